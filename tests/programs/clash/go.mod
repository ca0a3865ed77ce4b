module clash

go 1.22
