module goleak_magic/examples

go 1.22
