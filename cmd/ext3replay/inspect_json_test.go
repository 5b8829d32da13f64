package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"testing"
)

// jsonPieces: strings that encoding/json copies and strings it escapes (quote, backslash, HTML
// characters, control characters, invalid UTF-8, U+2028/U+2029, non-ASCII).
var jsonPieces = []string{"", "a", "/top00/file.dat", " ", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f",
	"\xff", "\xc3", "é", "日本", "\u2028", "\u2029", "😀", "-> /x", "[1,2]"}

func randomJSONString(r *rand.Rand) string {
	var b []byte
	for n := r.Intn(4); n > 0; n-- {
		b = append(b, jsonPieces[r.Intn(len(jsonPieces))]...)
	}
	return string(b)
}

// TestInspectJSONMatchesEncoder: writeInspectJSON writes what json.Encoder (indent of two
// spaces) writes for the whole document, on random files, with and without --groups.
func TestInspectJSONMatchesEncoder(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	sum := inspectSummary{Image: "a<b>&\"c\"", Features: []string{"x"}, BackupGroups: []uint32{1, 3}}
	for n := 0; n < 500; n++ {
		files := make([]inspectFile, r.Intn(5))
		for i := range files {
			files[i] = inspectFile{Path: randomJSONString(r), Ino: r.Uint32(), Type: randomJSONString(r), Mode: randomJSONString(r),
				Links: uint16(r.Uint32()), Size: r.Uint64(), Blocks: r.Uint64(), Htree: r.Intn(2) == 0}
			if r.Intn(2) == 0 {
				files[i].Target = randomJSONString(r)
			}
			if r.Intn(2) == 0 {
				files[i].Device = randomJSONString(r)
			}
		}
		type withGroups struct {
			inspectSummary
			Groups []inspectGroup `json:"groups"`
			Files  []inspectFile  `json:"files"`
		}
		type plain struct {
			inspectSummary
			Files []inspectFile `json:"files"`
		}
		groups := []inspectGroup{{Group: 1, Super: "backup", Flags: "A&B"}}
		for _, c := range []struct{ doc, head any }{
			{plain{sum, files}, plain{sum, nil}},
			{withGroups{sum, groups, files}, withGroups{sum, groups, nil}},
		} {
			var want, got bytes.Buffer
			enc := json.NewEncoder(&want)
			enc.SetIndent("", "  ")
			if err := enc.Encode(c.doc); err != nil {
				t.Fatal(err)
			}
			err := writeInspectJSON(&got, c.head, files)
			if len(files) == 0 {
				if err != errNotLast || got.Len() != 0 {
					t.Fatalf("no files: err %v, wrote %q; want errNotLast and nothing written", err, got.String())
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Fatalf("files %+v:\nencoding/json:\n%s\nwriteInspectJSON:\n%s", files, want.String(), got.String())
			}
		}
	}
}
