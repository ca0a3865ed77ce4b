module example.com/pt

go 1.22
