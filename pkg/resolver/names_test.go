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
