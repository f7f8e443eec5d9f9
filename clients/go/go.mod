module github.com/toolgate/toolgate-go

go 1.19
