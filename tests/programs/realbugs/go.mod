module realbugs

go 1.22
