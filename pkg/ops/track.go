package ops

import (
	"sort"
	"strconv"
	"strings"
)

// A file as stats and diff see it: one inode's life under one or more
// names, from its first appearance in the ops to the end of the run.
// Identity follows moves and links, so writes after a rename count for the
// same file, and a name deleted and created again gives two files.
type entity struct {
	first      string // first name seen
	canon      string // first name with its directories under their first names (for matching runs)
	occurrence int    // number of earlier entities with the same first name
	canonOcc   int    // number of earlier entities with the same canon
	typ        string // "file", "dir", "symlink", "node" or "" when unknown
	created    bool   // got its first name during the run
	preexisted bool   // first seen through an op that needs it to exist
	deleted    bool
	endReason  string // how it ended, when deleted
	names      []string
	size       *uint64
	history    []string
	data, meta Volume
	kinds      []kindVolume // data and meta split by kind, in the order the kinds came
	anomalies  int
	firstSeq   int64
	lastSeq    int64
	firstT     float64
	lastT      float64
	seen       bool
}

// kindVolume is an entity's I/O of one kind. A file sees one to three kinds: a list beats a map
// (which was an allocation per file, in a diff whose time went a third to maps).
type kindVolume struct {
	kind Kind
	v    Volume
}

// volume returns e's I/O of kind k.
func (e *entity) volume(k Kind) Volume {
	for _, kv := range e.kinds {
		if kv.kind == k {
			return kv.v
		}
	}
	return Volume{}
}

// addVolume counts op in e's I/O of its kind.
func (e *entity) addVolume(op *Op) {
	for i := range e.kinds {
		if e.kinds[i].kind == op.Kind {
			e.kinds[i].v.Add(op)
			return
		}
	}
	e.kinds = append(e.kinds, kindVolume{kind: op.Kind})
	e.kinds[len(e.kinds)-1].v.Add(op)
}

func (e *entity) touch(op *Op) {
	if !e.seen {
		e.seen = true
		e.firstSeq, e.firstT = op.Seq, op.T
	}
	e.lastSeq, e.lastT = op.Seq, op.T
}

func (e *entity) removeName(p string) {
	for i, n := range e.names {
		if n == p {
			e.names = append(e.names[:i], e.names[i+1:]...)
			return
		}
	}
}

func (e *entity) renameName(from, to string) {
	for i, n := range e.names {
		if n == from {
			e.names[i] = to
			return
		}
	}
}

// tracker replays ops and keeps the entities and the live names.
type tracker struct {
	entities []*entity
	byPath   map[string]*entity
	firstCnt map[string]int
	// firstTouch records, per name, whether the name existed before its
	// first op in this run (true) or came into being during it (false).
	firstTouch map[string]bool
	totals     Totals
	anomalies  int64
	ops        int64
	canonCnt   map[string]int
	ns         []nsOp // namespace ops with run-independent names
}

// nsOp is a namespace op described independently of earlier renames: every
// name is written with its directories under their first names (an op on
// /e/f after "move /d -> /e" reads as one on /d/f), so that one missing
// rename does not make every later op on the subtree differ.
type nsOp struct {
	key      string   // op, canonical names, overwrite, size
	subjects []string // canonical names it touches (for per-path order)
	names    []string // the names as the run printed them (to explain tree differences)
	op       *Op
}

func newTracker() *tracker {
	return &tracker{byPath: make(map[string]*entity), firstCnt: make(map[string]int),
		firstTouch: make(map[string]bool), canonCnt: make(map[string]int)}
}

func track(all []Op) *tracker {
	t := newTracker()
	for i := range all {
		t.add(&all[i])
	}
	return t
}

func (t *tracker) noteName(p string, existed bool) {
	if p == "" {
		return
	}
	if _, ok := t.firstTouch[p]; !ok {
		t.firstTouch[p] = existed
	}
}

// get returns the live entity named p, making a pre-existing one if the
// name was not seen yet.
func (t *tracker) get(p string) *entity {
	if e := t.byPath[p]; e != nil {
		return e
	}
	e := t.newEntity(p)
	e.preexisted = true
	return e
}

func (t *tracker) newEntity(p string) *entity {
	c := t.canonical(p)
	e := &entity{first: p, canon: c, occurrence: t.firstCnt[p], names: []string{p}, canonOcc: t.canonCnt[c]}
	t.firstCnt[p]++
	t.canonCnt[c]++
	t.entities = append(t.entities, e)
	t.byPath[p] = e
	return e
}

// dropName removes name p from whatever entity holds it; an entity left
// without names is deleted for reason.
func (t *tracker) dropName(p, reason string) {
	e := t.byPath[p]
	if e == nil {
		return
	}
	delete(t.byPath, p)
	e.removeName(p)
	if len(e.names) == 0 {
		e.deleted = true
		e.endReason = reason
	}
}

func typeOf(op Type) string {
	switch op {
	case Create:
		return "file"
	case Mkdir:
		return "dir"
	case Symlink:
		return "symlink"
	case Mknod:
		return "node"
	}
	return ""
}

// canonical is p with each directory named by its entity's canonical name.
func (t *tracker) canonical(p string) string {
	if p == "" || p == "/" {
		return p
	}
	if e := t.byPath[p]; e != nil {
		return e.canon
	}
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return p // "/x" or a relative name: nothing above to rename
	}
	return t.canonical(p[:i]) + p[i:]
}

// recordNS notes a namespace op, before it changes the names.
func (t *tracker) recordNS(op *Op) {
	n := nsOp{op: op, names: []string{op.Path}}
	c := t.canonical(op.Path)
	if e := t.byPath[op.Path]; e != nil && e.canonOcc > 0 {
		c += " #" + strconv.Itoa(e.canonOcc+1)
	}
	n.subjects = []string{c}
	n.key = string(op.Op) + " " + c
	if op.To != "" {
		ct := t.canonical(op.To)
		n.subjects = append(n.subjects, ct)
		n.names = append(n.names, op.To)
		n.key += " -> " + ct
	}
	if op.Overwrite {
		n.key += " (overwrite)"
	}
	if op.Size != nil {
		n.key += " size " + strconv.FormatUint(*op.Size, 10)
	}
	t.ns = append(t.ns, n)
}

func (t *tracker) add(op *Op) {
	t.ops++
	if op.IsNamespace() {
		t.recordNS(op)
	}
	t.totals.Add(op)
	switch op.Op {
	case Read, Write:
		if op.Path == "" || op.Kind == KindJournal {
			return // run-level I/O: counted in totals only
		}
		t.noteName(op.Path, true)
		e := t.get(op.Path)
		e.touch(op)
		if op.Kind == KindData {
			e.data.Add(op)
		} else {
			e.meta.Add(op)
		}
		e.addVolume(op)
		if op.Kind == KindDir && e.typ == "" {
			e.typ = "dir"
		}
	case Create, Mkdir, Symlink, Mknod:
		t.noteName(op.Path, false)
		e := t.byPath[op.Path]
		// A name seen only through I/O so far is the file being created:
		// its data can be attributed before its directory entry is certain.
		if e == nil || len(e.history) > 0 || !e.preexisted {
			if e != nil {
				t.dropName(op.Path, "replaced by a new "+string(op.Op))
			}
			e = t.newEntity(op.Path)
		}
		if e.preexisted && e.occurrence == 0 {
			t.firstTouch[op.Path] = false // its earlier I/O was the new file's
		}
		if len(t.ns) > 0 {
			// recordNS ran before the new file existed: name it as the
			// new file is named (a replaced name may have had another).
			n := &t.ns[len(t.ns)-1]
			n.subjects[0] = e.key()
			n.key = string(op.Op) + " " + e.key()
		}
		e.preexisted = false
		e.created = true
		e.typ = typeOf(op.Op)
		e.touch(op)
		e.history = append(e.history, string(op.Op))
	case Delete, Rmdir, Unlink:
		t.noteName(op.Path, true)
		e := t.get(op.Path)
		e.touch(op)
		e.history = append(e.history, historyText(op))
		if op.Op == Rmdir {
			e.typ = "dir"
		}
		delete(t.byPath, op.Path)
		e.removeName(op.Path)
		if op.Op != Unlink {
			// delete and rmdir remove the last name, even names this run
			// never saw.
			e.deleted = true
			e.endReason = string(op.Op)
			for _, n := range e.names {
				delete(t.byPath, n)
			}
			e.names = nil
		}
	case Move:
		t.noteName(op.Path, true)
		t.noteName(op.To, op.Overwrite)
		e := t.get(op.Path)
		e.touch(op)
		e.history = append(e.history, historyText(op))
		if t.byPath[op.To] != nil && t.byPath[op.To] != e {
			victim := t.byPath[op.To]
			victim.touch(op)
			victim.history = append(victim.history, "replaced by "+op.Path)
			t.dropName(op.To, "replaced by move of "+op.Path)
		}
		delete(t.byPath, op.Path)
		e.renameName(op.Path, op.To)
		t.byPath[op.To] = e
		if e.typ == "dir" || e.typ == "" {
			// Only a directory has names under it; a file renamed by
			// rsync or an editor needs no scan of every live name.
			t.moveChildren(op.Path, op.To)
		}
	case Link:
		t.noteName(op.Path, true)
		t.noteName(op.To, false)
		e := t.get(op.Path)
		e.touch(op)
		e.history = append(e.history, historyText(op))
		if v := t.byPath[op.To]; v != nil && v != e {
			t.dropName(op.To, "replaced by link to "+op.Path)
		}
		e.names = append(e.names, op.To)
		t.byPath[op.To] = e
	case Truncate:
		t.noteName(op.Path, true)
		e := t.get(op.Path)
		e.touch(op)
		e.history = append(e.history, historyText(op))
		if op.Size != nil { // Validate requires it; ops from code may lack it
			s := *op.Size
			e.size = &s
		}
	case Anomaly:
		t.anomalies++
		if op.Path != "" {
			if e := t.byPath[op.Path]; e != nil {
				e.anomalies++
				e.touch(op)
			}
		}
	}
}

// moveChildren renames every live name under from/ to the same name under
// to/: a directory rename moves its whole subtree.
func (t *tracker) moveChildren(from, to string) {
	prefix := from + "/"
	if from == "/" {
		return
	}
	var moved []string
	for p := range t.byPath {
		if strings.HasPrefix(p, prefix) {
			moved = append(moved, p)
		}
	}
	sort.Strings(moved)
	for _, p := range moved {
		e := t.byPath[p]
		np := to + p[len(from):]
		delete(t.byPath, p)
		e.renameName(p, np)
		t.byPath[np] = e
	}
}

func historyText(op *Op) string {
	switch op.Op {
	case Move:
		s := "move -> " + op.To
		if op.Overwrite {
			s += " (overwrite)"
		}
		return s
	case Link:
		return "link -> " + op.To
	case Truncate:
		if op.Size == nil {
			return "truncate"
		}
		return "truncate " + strconv.FormatUint(*op.Size, 10)
	}
	return string(op.Op)
}

// state describes how the entity ends the run.
func (e *entity) state() string {
	if e.deleted {
		if e.endReason == "" || e.endReason == "delete" || e.endReason == "rmdir" {
			return "deleted"
		}
		return "deleted (" + e.endReason + ")"
	}
	names := append([]string(nil), e.names...)
	sort.Strings(names)
	switch {
	case len(names) == 0:
		return "unlinked"
	case len(names) == 1 && names[0] == e.first:
		return "exists"
	}
	hasFirst := false
	var others []string
	for _, n := range names {
		if n == e.first {
			hasFirst = true
		} else {
			others = append(others, n)
		}
	}
	if hasFirst {
		return "exists, also " + strings.Join(others, ", ")
	}
	return "moved to " + strings.Join(others, ", ")
}

// key identifies the entity across runs: its first name, and which of the
// files that had that first name it is.
func (e *entity) key() string {
	if e.canonOcc == 0 {
		return e.canon
	}
	return e.canon + " #" + strconv.Itoa(e.canonOcc+1)
}
