package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/phalago/phala/crypto"
)

// readMessage returns the message argument, or with "-" all of standard
// input; with hexMsg it is decoded from hex (0x optional, surrounding
// space ignored), as subkey's --hex.
func readMessage(cmd *cobra.Command, arg string, hexMsg bool) ([]byte, error) {
	msg := []byte(arg)
	if arg == "-" {
		b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<20))
		if err != nil {
			return nil, fmt.Errorf("read the message from standard input: %w", err)
		}
		msg = b
	}
	if !hexMsg {
		return msg, nil
	}
	s := strings.TrimSpace(string(msg))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("--hex: the message is not hex: %v", err)
	}
	return b, nil
}

// signatureOutput is what `phala key sign --json` prints.
type signatureOutput struct {
	Signature   string `json:"signature"`
	PublicKey   string `json:"publicKey"`
	SS58Address string `json:"ss58Address"`
}

func keySignCmd(g *globals, kf *keyFlags) *cobra.Command {
	var suri string
	var hexMsg bool
	c := &cobra.Command{
		Use:   "sign --suri URI <message | ->",
		Short: "Sign a message with a secret URI (sr25519, as subkey sign)",
		Long: `sign signs a message with the sr25519 key of --suri under Substrate's
"substrate" signing context, exactly as Substrate's "subkey sign" (and
polkadot.js's signRaw without wrapping) does, and prints the 64-byte
signature in hex (without 0x, as subkey prints it). sr25519 signatures are
randomized: signing twice gives two different signatures, both valid.

The message is the argument's bytes, or with "-" all of standard input;
with --hex it is hex (0x optional) and its decoded bytes are signed.
--suri - reads the secret URI from the first line of standard input instead
(then the message must be an argument).`,
		Example: `  phala key sign --suri //Alice "hello"
  phala key sign --suri //Alice --hex 0x68656c6c6f
  printf hello | phala key sign --suri //Alice -`,
		Args: exactArgs(1, "one message (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if suri == "" {
				return errors.New("--suri is required: the secret URI of the signing key (e.g. //Alice)")
			}
			if suri == "-" && args[0] == "-" {
				return errors.New("--suri - and message - both read standard input: give one of them as an argument")
			}
			prefix, _, err := kf.resolve()
			if err != nil {
				return err
			}
			msg, err := readMessage(cmd, args[0], hexMsg)
			if err != nil {
				return err
			}
			uri, err := readSecret(cmd, suri)
			if err != nil {
				return err
			}
			kp, err := keyPairFromURI(uri)
			if err != nil {
				return fmt.Errorf("--suri: %w", err)
			}
			sig := kp.Sign(crypto.SubstrateContext, msg)
			out := signatureOutput{
				Signature:   "0x" + hex.EncodeToString(sig[:]),
				PublicKey:   kp.Public().Hex(),
				SS58Address: kp.Public().AddressWithPrefix(prefix),
			}
			return g.output(cmd, out, func(w io.Writer) { fmt.Fprintln(w, hex.EncodeToString(sig[:])) })
		},
	}
	c.Flags().StringVar(&suri, "suri", "", "secret URI of the signing key (- reads it from standard input)")
	c.Flags().BoolVar(&hexMsg, "hex", false, "the message is hex; sign its decoded bytes")
	return c
}

// verifyOutput is what `phala key verify --json` prints.
type verifyOutput struct {
	Valid       bool   `json:"valid"`
	PublicKey   string `json:"publicKey"`
	SS58Address string `json:"ss58Address"`
}

func keyVerifyCmd(g *globals, kf *keyFlags) *cobra.Command {
	var hexMsg bool
	c := &cobra.Command{
		Use:   "verify <signature> <public key | address> <message | ->",
		Short: "Verify a message's sr25519 signature (as subkey verify)",
		Long: `verify checks that <signature> (64 bytes in hex, 0x optional) is the sr25519
signature of the message by the key <public key | address> (0x-hex or an
SS58 address under any network prefix) under Substrate's "substrate"
signing context, as "subkey verify" does. It prints "Signature verifies
correctly." and exits 0, or exits 1 with "signature invalid".

The message is the argument's bytes, or with "-" all of standard input;
with --hex it is hex and its decoded bytes are verified.`,
		Example: `  phala key verify 0x<128 hex digits> 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY "hello"
  printf hello | phala key verify <signature> 5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY -`,
		Args: exactArgs(3, "a signature, a public key or address, and a message"),
		RunE: func(cmd *cobra.Command, args []string) error {
			prefix, _, err := kf.resolve()
			if err != nil {
				return err
			}
			s := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(args[0]), "0x"), "0X")
			raw, err := hex.DecodeString(s)
			if err != nil || len(raw) != crypto.SignatureSize {
				return fmt.Errorf("signature %q: want %d bytes in hex (0x optional), as phala key sign or subkey sign print it", args[0], crypto.SignatureSize)
			}
			var sig crypto.Signature
			copy(sig[:], raw)
			pk, err := crypto.ParsePublicKey(args[1])
			if err != nil {
				return fmt.Errorf("%w (give an SS58 address or 0x followed by 64 hex digits)", err)
			}
			msg, err := readMessage(cmd, args[2], hexMsg)
			if err != nil {
				return err
			}
			if !pk.Verify(crypto.SubstrateContext, msg, sig) {
				return fmt.Errorf("signature invalid: it is not %s's sr25519 signature of this message (check the message, --hex, and the key)", pk.AddressWithPrefix(prefix))
			}
			out := verifyOutput{Valid: true, PublicKey: pk.Hex(), SS58Address: pk.AddressWithPrefix(prefix)}
			return g.output(cmd, out, func(w io.Writer) { fmt.Fprintln(w, "Signature verifies correctly.") })
		},
	}
	c.Flags().BoolVar(&hexMsg, "hex", false, "the message is hex; verify its decoded bytes")
	return c
}

// base58Alphabet is the alphabet of SS58 addresses (Bitcoin's base58).
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// vanityResult is a key vanity found and how long it took.
type vanityResult struct {
	kp       *crypto.KeyPair
	seed     [crypto.SeedSize]byte
	attempts uint64
}

func keyVanityCmd(g *globals, kf *keyFlags) *cobra.Command {
	var pattern string
	var attempts uint64
	var maxTime time.Duration
	c := &cobra.Command{
		Use:   "vanity --pattern X",
		Short: "Search for a key whose address contains a pattern (as subkey vanity)",
		Long: `vanity generates random keys until one's SS58 address (for --network or
--ss58-prefix; 42 by default) contains --pattern, and prints it as inspect
prints a secret: its secret seed (0x..., the secret: keep it safe), public
key and address. The pattern is case-sensitive base58 (no 0, O, I or l).

Each added character makes a match about 58 times rarer: 2 characters take
thousands of keys, 4 millions. The search stops after --attempts keys or
--max-time, whichever comes first, and then exits 1 saying so.`,
		Example: `  phala key vanity --pattern pha
  phala key vanity --pattern Pha --network phala --max-time 10m`,
		Args: exactArgs(0, "no arguments (the pattern goes in --pattern)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pattern == "" {
				return errors.New("--pattern is required: the text the address must contain")
			}
			for _, r := range pattern {
				if !strings.ContainsRune(base58Alphabet, r) {
					return fmt.Errorf("--pattern %q: %q never occurs in an SS58 address (base58 has no 0, O, I, l or non-alphanumerics)", pattern, r)
				}
			}
			if attempts == 0 || maxTime <= 0 {
				return errors.New("--attempts and --max-time must be positive")
			}
			prefix, _, err := kf.resolve()
			if err != nil {
				return err
			}
			start := time.Now()
			res, tried, err := vanitySearch(cmd.Context(), pattern, prefix, attempts, maxTime)
			if err != nil {
				return err
			}
			if res == nil {
				return fmt.Errorf("no address with prefix %d contains %q after %d keys in %s: each character makes a match about 58 times rarer; try a shorter pattern or raise --attempts/--max-time", prefix, pattern, tried, time.Since(start).Round(time.Millisecond))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Found after %d keys in %s. Keep the secret seed safe: anyone who has it controls the account.\n", res.attempts, time.Since(start).Round(time.Millisecond))
			k, header, err := secretKeyInfo("0x"+hex.EncodeToString(res.seed[:]), kf)
			if err != nil {
				return err
			}
			return g.output(cmd, k, func(w io.Writer) { k.print(w, header) })
		},
	}
	c.Flags().StringVar(&pattern, "pattern", "", "text the SS58 address must contain (case-sensitive base58)")
	c.Flags().Uint64Var(&attempts, "attempts", 10_000_000, "give up after this many keys")
	c.Flags().DurationVar(&maxTime, "max-time", 5*time.Minute, "give up after this long")
	return c
}

// vanitySearch tries random keys on every CPU until one's address under
// prefix contains pattern, attempts keys were tried or maxTime passed. It
// returns nil and the number tried when nothing was found.
func vanitySearch(ctx context.Context, pattern string, prefix uint16, attempts uint64, maxTime time.Duration) (*vanityResult, uint64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, maxTime)
	defer cancel()
	var (
		tried    atomic.Uint64
		once     sync.Once
		found    *vanityResult
		firstErr error
		wg       sync.WaitGroup
	)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := tried.Add(1)
				if n > attempts {
					return
				}
				kp, seed, err := crypto.GenerateKeyPair()
				if err != nil {
					once.Do(func() { firstErr = err })
					cancel()
					return
				}
				if strings.Contains(kp.Public().AddressWithPrefix(prefix), pattern) {
					once.Do(func() { found = &vanityResult{kp: kp, seed: seed, attempts: n} })
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	n := min(tried.Load(), attempts)
	if found != nil {
		return found, n, nil
	}
	return nil, n, firstErr
}
