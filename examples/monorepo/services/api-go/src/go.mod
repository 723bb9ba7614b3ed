module example.com/monorepo/api-go

go 1.22
