package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ramboot/ramboot/internal/apkinstall/signer"
)

// cmdKeygen makes an abuild-compatible signing key pair: NAME.rsa (PEM PKCS#1, 0600) and
// NAME.rsa.pub (PEM PKIX). Put NAME.rsa.pub into /etc/apk/keys of the systems that should trust
// indexes signed with NAME.rsa.
func cmdKeygen(args []string) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "key name: writes NAME.rsa and NAME.rsa.pub (required)")
	bits := fs.Int("bits", signer.DefaultKeyBits, "RSA key size in bits")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: ramboot keygen --out NAME [--bits N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	priv, pub, err := signer.GenerateKeyPair(*out, *bits)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ramboot keygen: %v\n", err)
		return 1
	}
	fmt.Printf("private key: %s\npublic key:  %s\n", priv, pub)
	return 0
}
