module github.com/keyval/keyval/bindings/go

go 1.24
