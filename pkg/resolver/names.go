package resolver

import (
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// Link is one directory entry naming an inode: Name inside directory Parent.
type Link struct {
	Parent uint32
	Name   string
}

// Names records, for every inode, the directory entries that name it, and turns them into paths.
// Most inodes have exactly one name, so the first link is stored inline and only extra hard links
// go to a second map. Not safe for concurrent mutation.
type Names struct {
	first map[uint32]Link
	more  map[uint32][]Link
}

func newNamesSized(n int) *Names {
	return &Names{first: make(map[uint32]Link, n), more: make(map[uint32][]Link)}
}

// Add records that directory parent has an entry name for ino (once; duplicates are ignored).
func (n *Names) Add(parent uint32, name string, ino uint32) {
	l := Link{parent, name}
	f, ok := n.first[ino]
	if !ok {
		n.first[ino] = l
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
	f, ok := n.first[ino]
	if !ok {
		return
	}
	more := n.more[ino]
	if f == l {
		if len(more) == 0 {
			delete(n.first, ino)
			return
		}
		n.first[ino] = more[0]
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
	f, ok := n.first[ino]
	if !ok {
		return nil
	}
	return append([]Link{f}, n.more[ino]...)
}

// Len is the number of inodes with at least one name.
func (n *Names) Len() int { return len(n.first) }

// namesMaxDepth bounds path construction so a corrupt (cyclic) name graph cannot loop forever.
const namesMaxDepth = 4096

// Path is the canonical full path of ino ("/" for the root), following the first link of each
// ancestor; "" if ino or one of its ancestors has no recorded name.
func (n *Names) Path(ino uint32) string {
	if ino == ext3fs.RootIno {
		return "/"
	}
	var parts []string
	for d := 0; ino != ext3fs.RootIno; d++ {
		l, ok := n.first[ino]
		if !ok || d >= namesMaxDepth {
			return ""
		}
		parts = append(parts, l.Name)
		ino = l.Parent
	}
	size := 0
	for _, p := range parts {
		size += len(p) + 1
	}
	b := make([]byte, 0, size)
	for i := len(parts) - 1; i >= 0; i-- {
		b = append(b, '/')
		b = append(b, parts[i]...)
	}
	return string(b)
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
