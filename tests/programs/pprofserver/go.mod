module pprofserver

go 1.22
