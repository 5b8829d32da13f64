package accuracy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Small assertion helpers (testify's yaml dependency is not in go.sum).
func eq[T comparable](t *testing.T, want, got T, what string) {
	t.Helper()
	if want != got {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func near(t *testing.T, want, got float64, what string) {
	t.Helper()
	if d := want - got; d > 1e-9 || d < -1e-9 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func keys(t *testing.T, want, got []Key, what string) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// A small workload's ground truth, as the guest prints it.
const groundTruth = `
{"op":"mkdir","path":"/p"}
{"op":"create","path":"/p/a"}
{"op":"write","path":"/p/a","min_bytes":10000}
{"op":"write","path":"/p/a","min_bytes":100}
{"op":"read","path":"/docs/r","min_bytes":6000}
{"op":"move","path":"/docs/n","to":"/p/n"}
{"op":"delete","path":"/old/x"}
{"op":"rmdir","path":"/old"}
`

// What a perfect analyzer would report for it (hand-made, with metadata I/O mixed in).
const perfect = `
{"seq":3,"op":"mkdir","path":"/p","ino":20}
{"seq":5,"op":"write","path":"/p","ino":20,"sector":100,"bytes":4096,"kind":"dir"}
{"seq":7,"op":"create","path":"/p/a","ino":21}
{"seq":8,"op":"write","path":"/p/a","ino":21,"sector":200,"bytes":12288,"kind":"data"}
{"seq":9,"op":"write","path":"/p/a","ino":21,"sector":200,"bytes":4096,"kind":"data"}
{"seq":11,"op":"read","path":"/docs/r","ino":14,"sector":300,"bytes":8192,"kind":"data"}
{"seq":12,"op":"write","sector":64,"bytes":4096,"kind":"inode"}
{"seq":14,"op":"move","path":"/docs/n","to":"/p/n","ino":13}
{"seq":17,"op":"delete","path":"/old/x","ino":16}
{"seq":18,"op":"rmdir","path":"/old","ino":15}
`

func mustExpected(t *testing.T, s string) []Expected {
	t.Helper()
	e, err := ReadExpected(strings.NewReader(s), "expected.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustOps(t *testing.T, s string) []ops.Op {
	t.Helper()
	o, err := ops.ReadJSONL(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestPerfect(t *testing.T) {
	r := Score(mustExpected(t, groundTruth), mustOps(t, perfect))
	eq(t, 5, r.NSExpected, "r.NSExpected")
	eq(t, 5, r.NSReported, "r.NSReported")
	eq(t, 5, r.NSMatched, "r.NSMatched")
	near(t, 1.0, r.Precision(), "r.Precision()")
	near(t, 1.0, r.Recall(), "r.Recall()")
	eq(t, 0, len(r.Missing), "len(r.Missing)")
	eq(t, 0, len(r.Extra), "len(r.Extra)")
	eq(t, 2, len(r.Writes), "len(r.Writes)")
	eq(t, 2, r.WritesFound(), "r.WritesFound()")
	eq(t, 1, r.ReadsFound(), "r.ReadsFound()")
	eq(t, 0, r.StrayWrites, "r.StrayWrites")
	eq(t, 0, r.UnattributedBytes, "r.UnattributedBytes")
}

func TestMissing(t *testing.T) {
	// Drop the move and the second data write: 12288 bytes cover the first write (10000) but not both (10100).
	got := strings.Replace(perfect, `{"seq":14,"op":"move","path":"/docs/n","to":"/p/n","ino":13}`, "", 1)
	got = strings.Replace(got, `{"seq":9,"op":"write","path":"/p/a","ino":21,"sector":200,"bytes":4096,"kind":"data"}`, "", 1)
	got = strings.Replace(got, `"bytes":12288`, `"bytes":10000`, 1)
	r := Score(mustExpected(t, groundTruth), mustOps(t, got))
	eq(t, 4, r.NSMatched, "r.NSMatched")
	near(t, 1.0, r.Precision(), "r.Precision()")
	near(t, 4.0/5, r.Recall(), "r.Recall()")
	keys(t, []Key{{ops.Move, "/docs/n", "/p/n"}}, r.Missing, "r.Missing")
	if len(r.Writes) != 2 {
		t.Fatalf("%d write checks, want 2", len(r.Writes))
	}
	eq(t, true, r.Writes[0].Found, "r.Writes[0].Found")
	eq(t, false, r.Writes[1].Found, "r.Writes[1].Found")
	eq(t, int64(10100), r.Writes[1].Need, "r.Writes[1].Need")
	eq(t, int64(10000), r.Writes[1].Got, "r.Writes[1].Got")
}

func TestExtra(t *testing.T) {
	got := perfect + `
{"seq":19,"op":"create","path":"/p/ghost","ino":30}
{"seq":20,"op":"delete","path":"/old/x","ino":16}
{"seq":21,"op":"anomaly","sector":8,"bytes":4096,"kind":"inode","reason":"bad inode"}
`
	r := Score(mustExpected(t, groundTruth), mustOps(t, got))
	eq(t, 5, r.NSMatched, "r.NSMatched")
	eq(t, 7, r.NSReported, "r.NSReported")
	near(t, 5.0/7, r.Precision(), "r.Precision()")
	near(t, 1.0, r.Recall(), "r.Recall()")
	// The second delete of the same path is extra: matching is by multiset, not by set.
	keys(t, []Key{{ops.Create, "/p/ghost", ""}, {ops.Delete, "/old/x", ""}}, r.Extra, "r.Extra")
	eq(t, 1, r.Anomalies, "r.Anomalies")
}

func TestMisattributed(t *testing.T) {
	// The move reported under a stale destination, the data write under the directory's old name, and a read
	// whose path the analyzer could not tell.
	got := strings.Replace(perfect, `"to":"/p/n"`, `"to":"/q/n"`, 1)
	got = strings.Replace(got, `{"seq":8,"op":"write","path":"/p/a"`, `{"seq":8,"op":"write","path":"/old/a"`, 1)
	got = strings.Replace(got, `"op":"read","path":"/docs/r",`, `"op":"read",`, 1)
	r := Score(mustExpected(t, groundTruth), mustOps(t, got))
	keys(t, []Key{{ops.Move, "/docs/n", "/p/n"}}, r.Missing, "r.Missing")
	keys(t, []Key{{ops.Move, "/docs/n", "/q/n"}}, r.Extra, "r.Extra")
	near(t, 4.0/5, r.Precision(), "r.Precision()")
	near(t, 4.0/5, r.Recall(), "r.Recall()")
	eq(t, 0, r.WritesFound(), "r.WritesFound()") // 4096 left on /p/a: neither 10000 nor 10100
	eq(t, 1, r.StrayWrites, "r.StrayWrites")
	eq(t, int64(12288), r.StrayWriteBytes, "r.StrayWriteBytes")
	eq(t, "[/old/a]", fmt.Sprint(r.StrayPaths), "r.StrayPaths")
	eq(t, 0, r.ReadsFound(), "r.ReadsFound()")
	eq(t, int64(8192), r.UnattributedBytes, "r.UnattributedBytes")
}

func TestOptional(t *testing.T) {
	// A burst: intermediate steps optional, the net effect mandatory, one key in both.
	exp := mustExpected(t, `
{"op":"mkdir","path":"/b","optional":true}
{"op":"create","path":"/b/draft","optional":true}
{"op":"write","path":"/b/draft","min_bytes":6000,"optional":true}
{"op":"move","path":"/b/draft","to":"/b/final","optional":true}
{"op":"mkdir","path":"/b"}
{"op":"create","path":"/b/final"}
{"op":"write","path":"/b/final","min_bytes":6000}
`)
	// The disk saw the intermediate name: create under it then a move, which is fine.
	got := mustOps(t, `
{"seq":1,"op":"mkdir","path":"/b"}
{"seq":2,"op":"create","path":"/b/draft"}
{"seq":3,"op":"write","path":"/b/draft","bytes":8192,"kind":"data"}
{"seq":4,"op":"move","path":"/b/draft","to":"/b/final"}
`)
	r := Score(exp, got)
	eq(t, 2, r.NSExpected, "r.NSExpected")
	eq(t, 1, r.NSMatched, "r.NSMatched") // mkdir went to the mandatory line, not the optional one
	eq(t, 1, r.NSReported, "r.NSReported")
	keys(t, []Key{{ops.Create, "/b/final", ""}}, r.Missing, "r.Missing")
	eq(t, 0, len(r.Extra), "len(r.Extra)")
	eq(t, 0, r.StrayWrites, "r.StrayWrites") // /b/draft was written by the workload, even if optionally
	eq(t, 0, r.WritesFound(), "r.WritesFound()")
}

func TestEmpty(t *testing.T) {
	r := Score(nil, nil)
	near(t, 1.0, r.Precision(), "r.Precision()")
	near(t, 1.0, r.Recall(), "r.Recall()")
	r = Score(mustExpected(t, `{"op":"mkdir","path":"/a"}`), nil)
	near(t, 0.0, r.Recall(), "r.Recall()")
	near(t, 1.0, r.Precision(), "r.Precision()")
}

func TestReadExpectedErrors(t *testing.T) {
	for _, bad := range []string{
		`{"op":"write","path":"/a"}`,
		`{"op":"move","path":"/a"}`,
		`{"op":"truncate","path":"/a"}`,
		`{"op":"frobnicate","path":"/a"}`,
		`{"op":"create","path":"a"}`,
		`{"op":"create","path":"/a","bogus":1}`,
		`{"op":"create"`,
	} {
		_, err := ReadExpected(strings.NewReader("{\"op\":\"mkdir\",\"path\":\"/d\"}\n"+bad), "x.jsonl")
		if err == nil {
			t.Errorf("%s: accepted", bad)
		} else if !strings.Contains(err.Error(), "x.jsonl:2") {
			t.Errorf("%s: error %q does not name x.jsonl:2", bad, err)
		}
	}
}

func TestAka(t *testing.T) {
	exp := mustExpected(t, `
{"op":"link","path":"/a","to":"/b"}
{"op":"write","path":"/b","min_bytes":3000,"aka":["/a"]}
{"op":"unlink","path":"/a"}
{"op":"write","path":"/b","min_bytes":100}
`)
	// The analyzer names the inode by its first name while it has two.
	r := Score(exp, mustOps(t, `
{"seq":1,"op":"link","path":"/a","to":"/b"}
{"seq":2,"op":"write","path":"/a","bytes":4096,"kind":"data"}
{"seq":3,"op":"unlink","path":"/a"}
{"seq":4,"op":"write","path":"/b","bytes":4096,"kind":"data"}
`))
	eq(t, 2, r.WritesFound(), "r.WritesFound()")
	eq(t, 0, r.StrayWrites, "r.StrayWrites")
	// Without the alias, the same report is one miss and one stray write.
	exp[1].Aka = nil
	r = Score(exp, mustOps(t, `{"seq":2,"op":"write","path":"/a","bytes":4096,"kind":"data"}`))
	eq(t, 0, r.WritesFound(), "r.WritesFound()")
	eq(t, 1, r.StrayWrites, "r.StrayWrites")
	if _, err := ReadExpected(strings.NewReader(`{"op":"write","path":"/b","min_bytes":1,"aka":["a"]}`), "x"); err == nil {
		t.Error("relative aka accepted")
	}
}

func TestAkaNamespace(t *testing.T) {
	exp := mustExpected(t, `
{"op":"link","path":"/a","to":"/b"}
{"op":"link","path":"/b","to":"/c","aka":["/a"]}
{"op":"truncate","path":"/c","size":10,"aka":["/a","/b"]}
{"op":"link","path":"/x","to":"/y","optional":true,"aka":["/w"]}
`)
	// /a is right for the second link through its alias, /b for the truncate; the optional link is reported
	// under its alias; a link from a name the file never had is wrong.
	r := Score(exp, mustOps(t, `
{"seq":1,"op":"link","path":"/a","to":"/b"}
{"seq":2,"op":"link","path":"/a","to":"/c"}
{"seq":3,"op":"truncate","path":"/b","size":10}
{"seq":4,"op":"link","path":"/w","to":"/y"}
{"seq":5,"op":"link","path":"/q","to":"/c"}
`))
	eq(t, 3, r.NSMatched, "r.NSMatched")
	eq(t, 4, r.NSReported, "r.NSReported")
	keys(t, []Key{{ops.Link, "/q", "/c"}}, r.Extra, "r.Extra")
	eq(t, 0, len(r.Missing), "len(r.Missing)")

	// An exact match is preferred to an alias: the first reported op must not consume the line the second
	// one matches exactly.
	exp = mustExpected(t, `
{"op":"truncate","path":"/p","size":1,"aka":["/q"]}
{"op":"truncate","path":"/q","size":1}
`)
	r = Score(exp, mustOps(t, `
{"seq":1,"op":"truncate","path":"/q","size":1}
{"seq":2,"op":"truncate","path":"/q","size":1}
`))
	eq(t, 2, r.NSMatched, "r.NSMatched")
}
