module testrun

go 1.22
