package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	bip39 "github.com/cosmos/go-bip39"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/crypto"
)

// networkID is what subkey prints for the generic Substrate format
// (SS58 prefix 42).
const networkID = "substrate"

func keyCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "key",
		Aliases: []string{"keys"},
		Short:   "Generate and inspect sr25519 keys (the same keys and addresses as Substrate's subkey)",
		Long: `key generates and inspects sr25519 account keys. Secret URIs follow Substrate:
"<mnemonic or 0x-seed>[//hard][/soft][///password]"; a URI that starts with
"//" uses Substrate's public development phrase, so //Alice is the
well-known development account. Addresses are SS58 with prefix 42, as
subkey prints them by default.`,
		Example: `  phala key generate
  phala key inspect //Alice
  phala key inspect --public 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY`,
	}
	c.AddCommand(keyGenerateCmd(g), keyInspectCmd(g))
	return c
}

// keyInfo is a key as subkey prints it (its JSON field names too). The
// secret fields are set only by generate.
type keyInfo struct {
	SecretPhrase  string `json:"secretPhrase,omitempty"`
	SecretSeed    string `json:"secretSeed,omitempty"`
	NetworkID     string `json:"networkId"`
	PublicKey     string `json:"publicKey"`
	AccountID     string `json:"accountId"`
	SS58PublicKey string `json:"ss58PublicKey"`
	SS58Address   string `json:"ss58Address"`
}

func newKeyInfo(pk crypto.PublicKey) keyInfo {
	return keyInfo{
		NetworkID:     networkID,
		PublicKey:     pk.Hex(),
		AccountID:     pk.Hex(),
		SS58PublicKey: pk.Address(),
		SS58Address:   pk.Address(),
	}
}

// print writes the lines subkey prints after its header line.
func (k keyInfo) print(w io.Writer, header string, seed bool) {
	fmt.Fprintln(w, header)
	fmt.Fprintf(w, "  Network ID:        %s\n", k.NetworkID)
	if seed {
		fmt.Fprintf(w, "  Secret seed:       %s\n", k.SecretSeed)
	}
	fmt.Fprintf(w, "  Public key (hex):  %s\n", k.PublicKey)
	fmt.Fprintf(w, "  Account ID:        %s\n", k.AccountID)
	fmt.Fprintf(w, "  Public key (SS58): %s\n", k.SS58PublicKey)
	fmt.Fprintf(w, "  SS58 Address:      %s\n", k.SS58Address)
}

func keyGenerateCmd(g *globals) *cobra.Command {
	var scheme string
	var words int
	c := &cobra.Command{
		Use:   "generate",
		Short: "Generate a new secret phrase and print its account",
		Long: `generate makes a new BIP39 secret phrase from the operating system's random
source and prints it with its account: public key, account id and SS58
address. The key is derived from the phrase exactly as Substrate's subkey
derives it, so the phrase works in subkey, polkadot.js and this chain alike.

The phrase is the secret: anyone who has it controls the account. Nothing
is stored; write it down.`,
		Example: `  phala key generate
  phala key generate --words 24 --json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scheme != "sr25519" {
				return fmt.Errorf("--scheme %q is not supported: accounts on this chain are sr25519 (leave --scheme out)", scheme)
			}
			if words < 12 || words > 24 || words%3 != 0 {
				return fmt.Errorf("--words %d: a BIP39 phrase has 12, 15, 18, 21 or 24 words", words)
			}
			entropy, err := bip39.NewEntropy(words / 3 * 32)
			if err != nil {
				return err
			}
			phrase, err := bip39.NewMnemonic(entropy)
			if err != nil {
				return err
			}
			kp, err := crypto.KeyPairFromURI(phrase)
			if err != nil {
				return err
			}
			// The mini secret subkey prints as "Secret seed"; it must give
			// the same key.
			ms, err := schnorrkel.MiniSecretKeyFromMnemonic(phrase, "")
			if err != nil {
				return err
			}
			seed := ms.Encode()
			if kp2, err := crypto.KeyPairFromSeed(seed[:]); err != nil || kp2.Public() != kp.Public() {
				return errors.New("internal error: the phrase and its seed give different keys")
			}
			k := newKeyInfo(kp.Public())
			k.SecretPhrase = phrase
			k.SecretSeed = "0x" + hex.EncodeToString(seed[:])
			fmt.Fprintln(cmd.ErrOrStderr(), "Keep the secret phrase safe: anyone who has it controls the account.")
			return g.output(cmd, k, func(w io.Writer) {
				k.print(w, fmt.Sprintf("Secret phrase:       %s", phrase), true)
			})
		},
	}
	c.Flags().StringVar(&scheme, "scheme", "sr25519", "signature scheme (only sr25519)")
	c.Flags().IntVar(&words, "words", 12, "number of words of the phrase: 12, 15, 18, 21 or 24")
	return c
}

func keyInspectCmd(g *globals) *cobra.Command {
	var public string
	c := &cobra.Command{
		Use:   "inspect [secret-uri | -]",
		Short: "Print the account of a secret URI or of a public key",
		Long: `inspect derives the account of a secret URI and prints its public key,
account id and SS58 address, as Substrate's "subkey inspect" does:
  <phrase>                 a BIP39 phrase
  0x<64 hex digits>        a raw 32-byte seed
  ...//hard/soft           derivation junctions after either
  ...///password           a password (phrases only)
  //Alice                  a junction of Substrate's public development phrase
With "-" or no argument the URI is read from the first line of standard
input, which keeps it out of the shell history and the process list.

With --public it inspects a public key given as an SS58 address (any network
prefix) or 0x-hex instead; no secret is involved.`,
		Example: `  phala key inspect //Alice
  phala key inspect "//Alice//stash" --json
  phala key inspect - < my-secret.txt
  phala key inspect --public 0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%s takes one secret URI, got %d arguments: quote a phrase, e.g. phala key inspect \"word1 word2 ...\"", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if public != "" {
				if len(args) != 0 {
					return errors.New("give either a secret URI or --public, not both")
				}
				pk, err := crypto.ParsePublicKey(public)
				if err != nil {
					return fmt.Errorf("--public: %w (use an SS58 address or 0x followed by 64 hex digits)", err)
				}
				k := newKeyInfo(pk)
				return g.output(cmd, k, func(w io.Writer) {
					k.print(w, fmt.Sprintf("Public Key URI `%s` is account:", public), false)
				})
			}
			uri := "-"
			if len(args) == 1 {
				uri = args[0]
			}
			uri, err := readSecret(cmd, uri)
			if err != nil {
				return err
			}
			kp, err := keyPairFromURI(uri)
			if err != nil {
				return err
			}
			k := newKeyInfo(kp.Public())
			header := fmt.Sprintf("Secret Key URI `%s` is account:", uri)
			if bip39.IsMnemonicValid(uri) {
				header = fmt.Sprintf("Secret phrase `%s` is account:", uri)
			}
			return g.output(cmd, k, func(w io.Writer) { k.print(w, header, false) })
		},
	}
	c.Flags().StringVar(&public, "public", "", "inspect this public key (SS58 address or 0x-hex) instead of a secret")
	return c
}

// readSecret returns s, or with "-" the first line of standard input.
func readSecret(cmd *cobra.Command, s string) (string, error) {
	if s != "-" {
		return s, nil
	}
	if f, ok := cmd.InOrStdin().(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(cmd.ErrOrStderr(), "Secret URI: ")
		}
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the secret URI from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no secret URI: give one as an argument or on standard input (e.g. //Alice)")
	}
	return line, nil
}

// keyPairFromURI is crypto.KeyPairFromURI with advice on a bad URI. The
// URI itself is not repeated in the error: it is a secret.
func keyPairFromURI(uri string) (*crypto.KeyPair, error) {
	kp, err := crypto.KeyPairFromURI(uri)
	if err != nil {
		return nil, fmt.Errorf("%w (a secret URI is a BIP39 phrase or 0x-seed, optionally followed by //hard, /soft and ///password junctions; //Alice is a development account)", err)
	}
	return kp, nil
}
