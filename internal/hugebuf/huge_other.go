//go:build !linux

package hugebuf

func adviseHuge([]byte) {}
