// Command dkimverify verifies the DKIM signatures of the message on stdin
// with go-msgauth's dkim.Verify, answering every key lookup with the TXT
// record given as the first argument. It is a module of its own so that
// smtpprobe's tests can check our signer against an independent
// implementation without go-msgauth/dkim's golang.org/x/crypto dependency
// in the main go.mod. It prints one line per signature and exits 1 unless
// every signature verifies.
package main

import (
	"fmt"
	"os"

	"github.com/emersion/go-msgauth/dkim"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dkimverify TXT-RECORD < message")
		os.Exit(2)
	}
	txt := os.Args[1]
	vs, err := dkim.VerifyWithOptions(os.Stdin, &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) { return []string{txt}, nil },
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if len(vs) == 0 {
		fmt.Println("error: no signature")
		os.Exit(1)
	}
	ok := true
	for _, v := range vs {
		if v.Err != nil {
			ok = false
			fmt.Printf("fail d=%s: %v\n", v.Domain, v.Err)
			continue
		}
		fmt.Printf("pass d=%s h=%v\n", v.Domain, v.HeaderKeys)
	}
	if !ok {
		os.Exit(1)
	}
}
