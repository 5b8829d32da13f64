package resolver

import (
	"slices"
	"testing"
)

// The names table: first links kept by inode number in pages (linkPages), extra hard links in a
// map; removing the first link promotes the next; Len counts inodes with a name; paths follow
// the first links. Inode numbers on both sides of a page boundary and near 2^32; with no pages
// allocated ahead, fewer than used, and more.
func TestNamesTable(t *testing.T) {
	for _, pages := range []int{0, 2, 5} {
		testNamesTable(t, newNamesSized(pages))
	}
}

func testNamesTable(t *testing.T, n *Names) {
	const a, b, big = linkPageSize - 1, linkPageSize, 1<<32 - 2
	n.Add(2, "d", 11)
	n.Add(11, "a", a)
	n.Add(11, "b", b)
	n.Add(2, "big", big)
	n.Add(2, "b2", b) // a hard link
	n.Add(11, "b", b) // again: ignored
	if got := n.Len(); got != 4 {
		t.Errorf("Len = %d, want 4", got)
	}
	if got := n.Path(a); got != "/d/a" {
		t.Errorf("Path(a) = %q", got)
	}
	if got := n.Path(big); got != "/big" {
		t.Errorf("Path(big) = %q", got)
	}
	if got := n.Links(b); !slices.Equal(got, []Link{{11, "b"}, {2, "b2"}}) {
		t.Errorf("Links(b) = %v", got)
	}
	n.Remove(11, "b", b) // the first link goes: the hard link becomes canonical
	if got := n.Path(b); got != "/b2" {
		t.Errorf("after removing /d/b, Path(b) = %q, want /b2", got)
	}
	n.Remove(2, "b2", b)
	n.Remove(2, "nope", a) // not a link of a: nothing
	if got, l := n.Len(), n.Links(b); got != 3 || l != nil {
		t.Errorf("after removing both names of b: Len %d, Links %v", got, l)
	}
	if got := n.Path(a); got != "/d/a" {
		t.Errorf("Path(a) = %q after unrelated removals", got)
	}
	if got := n.Path(12345); got != "" {
		t.Errorf("Path of an inode with no name = %q", got)
	}
}

// Count, Has and HasPath answer as Links and Path do, without building them: for names in
// pages and in the map of extra links, for an inode with no name, for one whose directory has
// none, and for a loop of directories (no path).
func TestNamesQueries(t *testing.T) {
	n := newNamesSized(0)
	n.Add(2, "d", 11)
	n.Add(11, "f", 20)
	n.Add(2, "g", 20) // a hard link: in the map
	n.Add(99, "orphan", 21)
	n.Add(31, "x", 30) // 30 and 31 name each other: a loop
	n.Add(30, "y", 31)
	for _, ino := range []uint32{2, 11, 20, 21, 22, 30, 31, 99} {
		links := n.Links(ino)
		if got := n.Count(ino); got != len(links) {
			t.Errorf("Count(%d) = %d, want %d", ino, got, len(links))
		}
		for _, l := range append(links, Link{2, "d"}, Link{2, "g"}, Link{11, "nope"}) {
			if got, want := n.Has(ino, l), slices.Contains(links, l); got != want {
				t.Errorf("Has(%d, %v) = %v, want %v", ino, l, got, want)
			}
		}
		if got, want := n.HasPath(ino), n.Path(ino) != ""; got != want {
			t.Errorf("HasPath(%d) = %v, Path %q", ino, got, n.Path(ino))
		}
	}
	if !n.HasPath(20) || n.HasPath(21) || n.HasPath(30) {
		t.Error("HasPath: want a path for 20 only of 20, 21 (its directory unnamed), 30 (a loop)")
	}
}

// ChildPath is Path of the directory, a slash and the name, for the root, a subdirectory, an
// empty name, and a directory with no path.
func TestNamesChildPath(t *testing.T) {
	n := newNamesSized(0)
	n.Add(2, "d", 11)
	n.Add(99, "orphan", 21)
	for _, c := range []struct {
		dir  uint32
		name string
		want string
	}{{2, "a", "/a"}, {11, "b", "/d/b"}, {11, "", "/d/"}, {2, "", "/"}, {21, "c", ""}, {12, "c", ""}} {
		if got := n.ChildPath(c.dir, c.name); got != c.want {
			t.Errorf("ChildPath(%d, %q) = %q, want %q", c.dir, c.name, got, c.want)
		}
	}
}
