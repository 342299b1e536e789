//go:build linux

package sys

import (
	"os"
	"path/filepath"
	"testing"
)

// LstatID names the file an open descriptor is (FstatID) by its path, not
// what a symbolic link there points to, and allocates nothing.
func TestLstatID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	os.Symlink(path, filepath.Join(dir, "link"))
	cpath := append([]byte(path), 0)
	byPath, err := LstatID(cpath)
	if err != nil {
		t.Fatal(err)
	}
	byFD, err := FstatID(int(f.Fd()))
	if err != nil || byPath != byFD {
		t.Errorf("LstatID = %+v, FstatID = %+v (%v)", byPath, byFD, err)
	}
	if link, err := LstatID(append([]byte(filepath.Join(dir, "link")), 0)); err != nil || link == byFD {
		t.Errorf("LstatID of a symbolic link = %+v, %v: it followed the link", link, err)
	}
	if _, err := LstatID([]byte(path)); err == nil {
		t.Error("LstatID took a path without its NUL")
	}
	if n := testing.AllocsPerRun(100, func() { LstatID(cpath) }); n != 0 {
		t.Errorf("LstatID allocates %v times", n)
	}
}
