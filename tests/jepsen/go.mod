module github.com/keyval/keyval/tests/jepsen

go 1.24

require github.com/anishathalye/porcupine v1.3.1
