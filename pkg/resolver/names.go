package resolver

import (
	"slices"
	"strings"

	"github.com/ext3replay/ext3replay/internal/hugebuf"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// Link is one directory entry naming an inode: Name inside directory Parent.
type Link struct {
	Parent uint32
	Name   string
}

// Names records, for every inode, the directory entries that name it, and turns them into paths.
// Most inodes have exactly one name, so the first link is stored in a table indexed by inode
// number (linkPages) and only extra hard links go to a map. Not safe for concurrent mutation.
type Names struct {
	first linkPages
	more  map[uint32][]Link
}

// newNamesSized returns an empty table with room for pages pages of first links, allocated at
// once in advised huge pages (the index build counts the pages its inodes in use fall in): a page
// each allocated apart was 3 MB of 4 KiB page faults on a 100,000-file image.
func newNamesSized(pages int) *Names {
	n := &Names{more: make(map[uint32][]Link)}
	if pages > 0 {
		s := hugebuf.Slice[[linkPageSize]pageLink](pages)
		n.first.spare = s[:cap(s)] // the rest of its last 2 MiB page too
	}
	return n
}

// linkPages holds one Link per inode number in pages of linkPageSize inodes, allocated when an
// inode of their range first gets a name: no hashing where the work is (the index build adds a
// name per file; every path walks a chain of parents), and memory in proportion to the ranges of
// inodes in use, which the allocator keeps together group by group. On a 100,000-file image the
// map it replaced was a fifth of the index build's CPU.
type linkPages struct {
	pages []*[linkPageSize]pageLink
	n     int                      // inodes with a link
	spare [][linkPageSize]pageLink // pages allocated ahead, handed out in the order first used
}

const linkPageSize = 1024

type pageLink struct {
	l  Link
	ok bool
}

func (t *linkPages) get(ino uint32) (Link, bool) {
	p := int(ino / linkPageSize)
	if p >= len(t.pages) || t.pages[p] == nil {
		return Link{}, false
	}
	e := &t.pages[p][ino%linkPageSize]
	return e.l, e.ok
}

func (t *linkPages) set(ino uint32, l Link) {
	p := int(ino / linkPageSize)
	if p >= len(t.pages) {
		t.pages = append(t.pages, make([]*[linkPageSize]pageLink, p+1-len(t.pages))...)
	}
	if t.pages[p] == nil {
		if len(t.spare) > 0 {
			t.pages[p], t.spare = &t.spare[0], t.spare[1:]
		} else {
			t.pages[p] = new([linkPageSize]pageLink)
		}
	}
	e := &t.pages[p][ino%linkPageSize]
	if !e.ok {
		t.n++
	}
	*e = pageLink{l, true}
}

func (t *linkPages) del(ino uint32) {
	p := int(ino / linkPageSize)
	if p >= len(t.pages) || t.pages[p] == nil || !t.pages[p][ino%linkPageSize].ok {
		return
	}
	t.pages[p][ino%linkPageSize] = pageLink{}
	t.n--
}

// Add records that directory parent has an entry name for ino (once; duplicates are ignored).
func (n *Names) Add(parent uint32, name string, ino uint32) {
	l := Link{parent, name}
	f, ok := n.first.get(ino)
	if !ok {
		n.first.set(ino, l)
		return
	}
	if f == l {
		return
	}
	for _, m := range n.more[ino] {
		if m == l {
			return
		}
	}
	n.more[ino] = append(n.more[ino], l)
}

// Remove deletes the entry name in parent for ino, if recorded. When the first link goes, the
// next one (in the order added) becomes the canonical name.
func (n *Names) Remove(parent uint32, name string, ino uint32) {
	l := Link{parent, name}
	f, ok := n.first.get(ino)
	if !ok {
		return
	}
	more := n.more[ino]
	if f == l {
		if len(more) == 0 {
			n.first.del(ino)
			return
		}
		n.first.set(ino, more[0])
		more = more[1:]
	} else {
		for i, m := range more {
			if m == l {
				more = append(more[:i:i], more[i+1:]...)
				break
			}
		}
	}
	if len(more) == 0 {
		delete(n.more, ino)
	} else {
		n.more[ino] = more
	}
}

// Links returns every recorded name of ino, canonical first.
func (n *Names) Links(ino uint32) []Link {
	f, ok := n.first.get(ino)
	if !ok {
		return nil
	}
	return append([]Link{f}, n.more[ino]...)
}

// Count is the number of recorded names of ino (Links without building the slice).
func (n *Names) Count(ino uint32) int {
	if _, ok := n.first.get(ino); !ok {
		return 0
	}
	return 1 + len(n.more[ino])
}

// Has reports whether l is a recorded name of ino.
func (n *Names) Has(ino uint32, l Link) bool {
	f, ok := n.first.get(ino)
	if !ok {
		return false
	}
	return f == l || slices.Contains(n.more[ino], l)
}

// HasPath reports whether ino has a path (Path is not ""), without building it.
func (n *Names) HasPath(ino uint32) bool {
	for d := 0; ino != ext3fs.RootIno; d++ {
		l, ok := n.first.get(ino)
		if !ok || d >= namesMaxDepth {
			return false
		}
		ino = l.Parent
	}
	return true
}

// Len is the number of inodes with at least one name.
func (n *Names) Len() int { return n.first.n }

// namesMaxDepth bounds path construction so a corrupt (cyclic) name graph cannot loop forever.
const namesMaxDepth = 4096

// Path is the canonical full path of ino ("/" for the root), following the first link of each
// ancestor; "" if ino or one of its ancestors has no recorded name.
func (n *Names) Path(ino uint32) string { return n.path(ino, "", false) }

// ChildPath is Path(dir) + "/" + name ("/" + name in the root), built at once; "" if dir has
// no path.
func (n *Names) ChildPath(dir uint32, name string) string { return n.path(dir, name, true) }

// path builds the path of ino, or with child that of name inside it, in one allocation.
func (n *Names) path(ino uint32, name string, child bool) string {
	var stack [32]string // most paths: no allocation for the parts
	parts := stack[:0]
	if child {
		parts = append(parts, name)
	}
	for d := 0; ino != ext3fs.RootIno; d++ {
		l, ok := n.first.get(ino)
		if !ok || d >= namesMaxDepth {
			return ""
		}
		parts = append(parts, l.Name)
		ino = l.Parent
	}
	if len(parts) == 0 {
		return "/"
	}
	size := 0
	for _, p := range parts {
		size += len(p) + 1
	}
	var b strings.Builder
	b.Grow(size)
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(parts[i])
	}
	return b.String()
}

// Paths is every full path of ino: one per hard link whose directory has a path.
func (n *Names) Paths(ino uint32) []string {
	if ino == ext3fs.RootIno {
		return []string{"/"}
	}
	var out []string
	for _, l := range n.Links(ino) {
		dir := n.Path(l.Parent)
		switch dir {
		case "":
			continue
		case "/":
			out = append(out, "/"+l.Name)
		default:
			out = append(out, dir+"/"+l.Name)
		}
	}
	return out
}
