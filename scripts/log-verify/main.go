// Command log-verify checks the lifecycle log of an apikeys mount offline,
// against the mount's checkpoint public key alone: it trusts nothing the
// mount says about itself but what that key signed.
//
//	log-verify -key KEY checkpoint CP
//	    the checkpoint's signature; prints its size, root and chain head
//	log-verify -key KEY consistency OLD_CP NEW_CP PROOF
//	    the log of NEW_CP extends the log of OLD_CP (append-only)
//	log-verify -key KEY inclusion CP PROOF
//	    the entry in PROOF is in the log of CP
//	log-verify -key KEY entries CP[,CP...] FILE...
//	    JSON-lines entries (log/export pages, an archive first, then what
//	    is kept) recompute the hash chain from entry 1 and, at each
//	    checkpoint's size, its root and chain head
//
// KEY is the checkpoint verifier key (log/checkpoint's verifier_key) or
// @file holding it. CP is a file holding a signed checkpoint
// (vault read -field=checkpoint <mount>/log/checkpoint). PROOF is the JSON
// answer of log/proof/consistency or log/proof/inclusion
// (vault read -format=json ...). The exit status is 0 only when every check
// passes.
//
// The proofs are checked with github.com/transparency-dev/merkle, an
// implementation of RFC 9162's proofs independent of the one the mount
// uses to make them (golang.org/x/mod/sumdb/tlog); the checkpoint with
// transparency-dev/formats and x/mod's note.
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/hashchain"
)

func main() {
	key := flag.String("key", "", "checkpoint verifier key, or @file holding it")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: log-verify -key KEY checkpoint CP | consistency OLD_CP NEW_CP PROOF | inclusion CP PROOF | entries CP[,CP...] FILE...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*key, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "log-verify: FAILED:", err)
		os.Exit(1)
	}
}

func run(keyArg string, args []string) error {
	if keyArg == "" || len(args) < 2 {
		flag.Usage()
		return errors.New("missing arguments")
	}
	v, err := verifier(keyArg)
	if err != nil {
		return err
	}
	switch cmd := args[0]; {
	case cmd == "checkpoint" && len(args) == 2:
		cp, err := readCheckpoint(v, args[1])
		if err != nil {
			return err
		}
		fmt.Printf("ok: checkpoint of %s: size %d, root %s, chain %s, signed %s\n", cp.Origin, cp.Size, b64(cp.Hash), cp.chain, cp.time)
	case cmd == "consistency" && len(args) == 4:
		return consistency(v, args[1], args[2], args[3])
	case cmd == "inclusion" && len(args) == 3:
		return inclusion(v, args[1], args[2])
	case cmd == "entries" && len(args) >= 3:
		return entries(v, strings.Split(args[1], ","), args[2:])
	default:
		flag.Usage()
		return fmt.Errorf("unknown command or wrong number of arguments: %q", strings.Join(args, " "))
	}
	return nil
}

func verifier(arg string) (note.Verifier, error) {
	if file, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		arg = string(b)
	}
	v, err := note.NewVerifier(strings.TrimSpace(arg))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	return v, nil
}

// checkpoint is a verified checkpoint with the mount's extension lines.
type checkpoint struct {
	log.Checkpoint
	chain, time string
}

func readCheckpoint(v note.Verifier, file string) (*checkpoint, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	// A shell or the vault CLI may add or drop the final newline.
	b = append(bytes.TrimRight(b, "\n"), '\n')
	cp, ext, _, err := log.ParseCheckpoint(b, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := &checkpoint{Checkpoint: *cp}
	for _, line := range strings.Split(strings.TrimSpace(string(ext)), "\n") {
		if rest, ok := strings.CutPrefix(line, "chain "); ok {
			out.chain = rest
		} else if rest, ok := strings.CutPrefix(line, "time "); ok {
			out.time = rest
		}
	}
	return out, nil
}

// readAnswer reads a Vault API answer, with or without its "data" wrapper.
func readAnswer(file string, into interface{}) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var wrapped struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &wrapped) == nil && len(wrapped.Data) > 0 {
		b = wrapped.Data
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func decodeAll(list []string) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, s := range list {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("proof hash %d: %w", i, err)
		}
		out[i] = b
	}
	return out, nil
}

func consistency(v note.Verifier, oldFile, newFile, proofFile string) error {
	old, err := readCheckpoint(v, oldFile)
	if err != nil {
		return err
	}
	cur, err := readCheckpoint(v, newFile)
	if err != nil {
		return err
	}
	var p struct {
		From, To uint64
		Proof    []string
	}
	if err := readAnswer(proofFile, &p); err != nil {
		return err
	}
	if p.From != old.Size || p.To != cur.Size {
		return fmt.Errorf("the proof is from %d to %d entries, the checkpoints are of %d and %d", p.From, p.To, old.Size, cur.Size)
	}
	hashes, err := decodeAll(p.Proof)
	if err != nil {
		return err
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cur.Size, hashes, old.Hash, cur.Hash); err != nil {
		return fmt.Errorf("the log of %d entries does not extend the checkpoint of %d: %w", cur.Size, old.Size, err)
	}
	fmt.Printf("ok: the log of %d entries extends the checkpoint of %d entries\n", cur.Size, old.Size)
	return nil
}

// entry is a log entry as stored: the event is kept byte for byte.
type entry struct {
	Seq   uint64          `json:"seq"`
	Prev  string          `json:"prev"`
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
}

// leaf checks that e's hash covers its contents and returns its leaf hash.
func (e entry) leaf() ([]byte, error) {
	if want := hashchain.Hash(e.Seq, e.Prev, e.Event); want != e.Hash {
		return nil, fmt.Errorf("entry %d: its contents do not match its hash", e.Seq)
	}
	raw, err := hex.DecodeString(e.Hash)
	if err != nil {
		return nil, fmt.Errorf("entry %d: hash: %w", e.Seq, err)
	}
	return rfc6962.DefaultHasher.HashLeaf(raw), nil
}

func inclusion(v note.Verifier, cpFile, proofFile string) error {
	cp, err := readCheckpoint(v, cpFile)
	if err != nil {
		return err
	}
	var p struct {
		Seq      uint64 `json:"seq"`
		TreeSize uint64 `json:"tree_size"`
		Proof    []string
		Entry    string
	}
	if err := readAnswer(proofFile, &p); err != nil {
		return err
	}
	if p.TreeSize != cp.Size {
		return fmt.Errorf("the proof is for a tree of %d entries, the checkpoint has %d", p.TreeSize, cp.Size)
	}
	if p.Entry == "" {
		return fmt.Errorf("the proof carries no entry (archived?): check it with the entries command and the archive")
	}
	var e entry
	if err := json.Unmarshal([]byte(p.Entry), &e); err != nil {
		return fmt.Errorf("entry: %w", err)
	}
	if e.Seq != p.Seq {
		return fmt.Errorf("the proof is for entry %d but holds entry %d", p.Seq, e.Seq)
	}
	leaf, err := e.leaf()
	if err != nil {
		return err
	}
	hashes, err := decodeAll(p.Proof)
	if err != nil {
		return err
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Seq-1, cp.Size, leaf, hashes, cp.Hash); err != nil {
		return fmt.Errorf("entry %d is not in the checkpoint of %d entries: %w", e.Seq, cp.Size, err)
	}
	fmt.Printf("ok: entry %d is in the checkpoint of %d entries\n", e.Seq, cp.Size)
	return nil
}

func entries(v note.Verifier, cpFiles, files []string) error {
	var cps []*checkpoint
	for _, f := range cpFiles {
		cp, err := readCheckpoint(v, f)
		if err != nil {
			return err
		}
		cps = append(cps, cp)
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	tree := rf.NewEmptyRange(0)
	prev, next, checked := hashchain.Genesis, uint64(1), 0
	check := func(e entry) error {
		switch {
		case e.Seq != next:
			return fmt.Errorf("expected entry %d, found %d (entries missing or reordered)", next, e.Seq)
		case e.Prev != prev:
			return fmt.Errorf("entry %d does not link to entry %d", e.Seq, e.Seq-1)
		}
		leaf, err := e.leaf()
		if err != nil {
			return err
		}
		if err := tree.Append(leaf, nil); err != nil {
			return err
		}
		prev, next = e.Hash, next+1
		for _, cp := range cps {
			if cp.Size != e.Seq {
				continue
			}
			root, err := tree.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cp.Hash) {
				return fmt.Errorf("the entries' tree of %d does not have the checkpoint's root", cp.Size)
			}
			if cp.chain != "" && cp.chain != e.Hash {
				return fmt.Errorf("entry %d's hash is not the checkpoint's chain head", cp.Size)
			}
			checked++
		}
		return nil
	}
	for _, file := range files {
		if err := eachEntry(file, check); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	if checked != len(cps) {
		return fmt.Errorf("the entries end at %d, short of a checkpoint of %d entries (entries removed?)", next-1, cps[len(cps)-1].Size)
	}
	fmt.Printf("ok: %d entries chain from the first, and match %d checkpoint(s)\n", next-1, checked)
	return nil
}

// eachEntry calls fn with each entry of a JSON-lines file, in order.
func eachEntry(file string, fn func(entry) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("an entry is not readable: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return sc.Err()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
