module dkimverify

go 1.26.0

require github.com/emersion/go-msgauth v0.7.0

require golang.org/x/crypto v0.58.0 // indirect
