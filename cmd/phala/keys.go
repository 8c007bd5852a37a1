package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	bip39 "github.com/cosmos/go-bip39"
	"github.com/spf13/cobra"

	"github.com/phalago/phala/crypto"
)

// keyFlags are the flags of every key command that prints addresses.
type keyFlags struct {
	network string
	prefix  int
}

// register adds --network and --ss58-prefix to c and its subcommands.
func (f *keyFlags) register(c *cobra.Command) {
	c.PersistentFlags().StringVar(&f.network, "network", "", "print addresses for this network of Substrate's SS58 registry: "+strings.Join(crypto.NetworkNames(), ", ")+" (default substrate, prefix 42)")
	c.PersistentFlags().IntVar(&f.prefix, "ss58-prefix", -1, "print addresses with this SS58 prefix (0..16383) instead of --network's")
}

// resolve returns the SS58 prefix and the network name subkey prints for
// it.
func (f *keyFlags) resolve() (uint16, string, error) {
	switch {
	case f.network != "" && f.prefix >= 0:
		return 0, "", errors.New("give --network or --ss58-prefix, not both")
	case f.network != "":
		p, err := crypto.NetworkPrefix(f.network)
		if err != nil {
			return 0, "", fmt.Errorf("--network: %w", err)
		}
		return p, strings.ToLower(strings.TrimSpace(f.network)), nil
	case f.prefix >= 0:
		if err := crypto.CheckSS58Prefix(uint64(f.prefix)); err != nil {
			return 0, "", fmt.Errorf("--ss58-prefix: %w", err)
		}
		return uint16(f.prefix), crypto.NetworkName(uint16(f.prefix)), nil
	case f.prefix < -1:
		return 0, "", fmt.Errorf("--ss58-prefix %d: a prefix is 0..%d", f.prefix, crypto.MaxSS58Prefix)
	}
	return crypto.AddressFormat, crypto.NetworkName(crypto.AddressFormat), nil
}

func keyCmd(g *globals) *cobra.Command {
	kf := &keyFlags{}
	c := &cobra.Command{
		Use:   "key",
		Short: "Generate, inspect and sign with sr25519 keys (the same keys, addresses and signatures as Substrate's subkey)",
		Long: `key generates and inspects sr25519 account keys, signs and verifies messages,
and searches vanity addresses, as Substrate's subkey does. Secret URIs follow
Substrate: "<mnemonic or 0x-seed>[//hard][/soft][///password]"; a URI that
starts with "//" uses Substrate's public development phrase, so //Alice is
the well-known development account.

Addresses are SS58. They are printed with prefix 42 (generic Substrate, as
subkey prints by default) unless --network NAME (a name of Substrate's SS58
registry: phala 30, polkadot 0, kusama 2, ...) or --ss58-prefix N says
otherwise. Every command of phala accepts an address under any prefix: the
prefix only changes how the same public key is written.

These are local account keys; the chain's key eras, key sets and DKG (the
MasterKey's shares) are ` + "`phala keys status`" + ` (plural).`,
		Example: `  phala key generate
  phala key inspect //Alice
  phala key inspect //Alice --network phala
  phala key inspect --public 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY
  phala key sign --suri //Alice "hello"
  phala key verify <signature> 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY "hello"
  phala key vanity --pattern pha`,
	}
	kf.register(c)
	c.AddCommand(keyGenerateCmd(g, kf), keyInspectCmd(g, kf), keySignCmd(g, kf), keyVerifyCmd(g, kf), keyVanityCmd(g, kf),
		&cobra.Command{
			Use:    "status",
			Hidden: true, // the plural command's: say so rather than "unknown command"
			Args:   cobra.ArbitraryArgs,
			RunE: func(*cobra.Command, []string) error {
				return errors.New("phala key works with local account keys; the chain's key eras, key sets and DKG are `phala keys status` (plural)")
			},
		})
	return c
}

// keyInfo is a key as subkey prints it (its JSON field names too). The
// secret fields are set only for a secret: its phrase or URI, and the seed
// of the derived key ("n/a" after a soft junction, as subkey prints).
type keyInfo struct {
	SecretPhrase  string `json:"secretPhrase,omitempty"`
	SecretKeyURI  string `json:"secretKeyUri,omitempty"`
	NetworkID     string `json:"networkId"`
	SecretSeed    string `json:"secretSeed,omitempty"`
	PublicKey     string `json:"publicKey"`
	AccountID     string `json:"accountId"`
	SS58PublicKey string `json:"ss58PublicKey"`
	SS58Address   string `json:"ss58Address"`
}

func newKeyInfo(pk crypto.PublicKey, prefix uint16, network string) keyInfo {
	return keyInfo{
		NetworkID:     network,
		PublicKey:     pk.Hex(),
		AccountID:     pk.Hex(),
		SS58PublicKey: pk.AddressWithPrefix(prefix),
		SS58Address:   pk.AddressWithPrefix(prefix),
	}
}

// formatSeed is subkey's format_seed: 0x-hex, or "n/a" for none.
func formatSeed(seed []byte) string {
	if seed == nil {
		return "n/a"
	}
	return "0x" + hex.EncodeToString(seed)
}

// print writes the lines subkey prints after its header line; the seed
// line only for a secret.
func (k keyInfo) print(w io.Writer, header string) {
	fmt.Fprintln(w, header)
	fmt.Fprintf(w, "  Network ID:        %s\n", k.NetworkID)
	if k.SecretSeed != "" {
		fmt.Fprintf(w, "  Secret seed:       %s\n", k.SecretSeed)
	}
	fmt.Fprintf(w, "  Public key (hex):  %s\n", k.PublicKey)
	fmt.Fprintf(w, "  Account ID:        %s\n", k.AccountID)
	fmt.Fprintf(w, "  Public key (SS58): %s\n", k.SS58PublicKey)
	fmt.Fprintf(w, "  SS58 Address:      %s\n", k.SS58Address)
}

// secretKeyInfo is keyInfo of a secret URI, with subkey's header: a bare
// phrase prints as "Secret phrase:", anything else as "Secret Key URI".
func secretKeyInfo(uri string, kf *keyFlags) (keyInfo, string, error) {
	prefix, network, err := kf.resolve()
	if err != nil {
		return keyInfo{}, "", err
	}
	kp, seed, err := crypto.KeyPairFromURIWithSeed(uri)
	if err != nil {
		return keyInfo{}, "", fmt.Errorf("%w (a secret URI is a BIP39 phrase or 0x-seed, optionally followed by //hard, /soft and ///password junctions; //Alice is a development account)", err)
	}
	k := newKeyInfo(kp.Public(), prefix, network)
	k.SecretSeed = formatSeed(seed)
	if bip39.IsMnemonicValid(uri) {
		k.SecretPhrase = uri
		return k, fmt.Sprintf("Secret phrase:       %s", uri), nil
	}
	k.SecretKeyURI = uri
	return k, fmt.Sprintf("Secret Key URI `%s` is account:", uri), nil
}

func keyGenerateCmd(g *globals, kf *keyFlags) *cobra.Command {
	var scheme string
	var words int
	c := &cobra.Command{
		Use:   "generate",
		Short: "Generate a new secret phrase and print its account",
		Long: `generate makes a new BIP39 secret phrase from the operating system's random
source and prints it with its secret seed and its account: public key,
account id and SS58 address (for --network or --ss58-prefix). The key is derived from the phrase exactly as Substrate's subkey
derives it, so the phrase works in subkey, polkadot.js and this chain alike.

The phrase is the secret: anyone who has it controls the account. Nothing
is stored; write it down.`,
		Example: `  phala key generate
  phala key generate --words 24 --json
  phala key generate --network phala`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scheme != "sr25519" {
				return fmt.Errorf("--scheme %q is not supported: accounts on this chain are sr25519 (leave --scheme out)", scheme)
			}
			if words < 12 || words > 24 || words%3 != 0 {
				return fmt.Errorf("--words %d: a BIP39 phrase has 12, 15, 18, 21 or 24 words", words)
			}
			if _, _, err := kf.resolve(); err != nil {
				return err
			}
			entropy, err := bip39.NewEntropy(words / 3 * 32)
			if err != nil {
				return err
			}
			phrase, err := bip39.NewMnemonic(entropy)
			if err != nil {
				return err
			}
			k, header, err := secretKeyInfo(phrase, kf)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Keep the secret phrase safe: anyone who has it controls the account.")
			return g.output(cmd, k, func(w io.Writer) { k.print(w, header) })
		},
	}
	c.Flags().StringVar(&scheme, "scheme", "sr25519", "signature scheme (only sr25519)")
	c.Flags().IntVar(&words, "words", 12, "number of words of the phrase: 12, 15, 18, 21 or 24")
	return c
}

func keyInspectCmd(g *globals, kf *keyFlags) *cobra.Command {
	var public string
	c := &cobra.Command{
		Use:   "inspect [secret-uri | -]",
		Short: "Print the seed and account of a secret URI, or the account of a public key",
		Long: `inspect derives the account of a secret URI and prints its secret seed,
public key, account id and SS58 address, as Substrate's "subkey inspect" does:
  <phrase>                 a BIP39 phrase
  0x<64 hex digits>        a raw 32-byte seed
  ...//hard/soft           derivation junctions after either
  ...///password           a password (phrases only)
  //Alice                  a junction of Substrate's public development phrase
With "-" or no argument the URI is read from the first line of standard
input, which keeps it out of the shell history and the process list.

With --public it inspects a public key given as an SS58 address (any network
prefix) or 0x-hex instead; no secret is involved.

The secret seed is the 32-byte mini secret of the derived key: another
secret URI for the same account. A soft junction (/soft) has none; subkey
and this command print "n/a" then. Addresses use prefix 42 unless --network
or --ss58-prefix.`,
		Example: `  phala key inspect //Alice
  phala key inspect "//Alice//stash" --json
  phala key inspect //Alice --network polkadot
  phala key inspect - < my-secret.txt
  phala key inspect --public 0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%s takes one secret URI, got %s: quote a phrase, e.g. phala key inspect \"word1 word2 ...\"", cmd.CommandPath(), argCount(len(args)))
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
				prefix, network, err := kf.resolve()
				if err != nil {
					return err
				}
				k := newKeyInfo(pk, prefix, network)
				return g.output(cmd, k, func(w io.Writer) {
					k.print(w, fmt.Sprintf("Public Key URI `%s` is account:", public))
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
			k, header, err := secretKeyInfo(uri, kf)
			if err != nil {
				return err
			}
			return g.output(cmd, k, func(w io.Writer) { k.print(w, header) })
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
