package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const gptFixture = "../../fixtures/real/gpt-ext4-boot-swap"

func needGPT(t *testing.T) (img, log string) {
	t.Helper()
	img, log = filepath.Join(gptFixture, "image.raw.zst"), filepath.Join(gptFixture, "io.log.zst")
	if _, err := os.Stat(log); err != nil {
		t.Skip("fixture gpt-ext4-boot-swap not present")
	}
	return img, log
}

// TestInspectPartitions: inspect lists the table and what each partition holds; --partition N
// shows that file system; a bare image refuses --partition.
func TestInspectPartitions(t *testing.T) {
	img, _ := needGPT(t)
	code, out := run(t, "inspect", img)
	for _, want := range []string{"Partitions:   gpt, disk 3C5E7A90-1B2D-4F6E-8A9C-0D1E2F3A4B5C, 3 partitions",
		"1     2048    100351  48.0 MiB  linux  ext4     root", "2     100352  133119  16.0 MiB  linux  ext2     boot",
		"3     133120  149503  8.0 MiB   swap   swap     swap"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("inspect: exit %d, no %q in\n%s", code, want, out)
		}
	}
	code, out = run(t, "inspect", "--format", "json", img)
	var doc partitionTableInfo
	if err := json.Unmarshal([]byte(out), &doc); code != exitOK || err != nil || len(doc.Partitions) != 3 || doc.Partitions[1].Content != "ext2" || doc.Partitions[1].StartSector != 100352 {
		t.Errorf("inspect json: exit %d, %v, %+v", code, err, doc)
	}
	code, out = run(t, "inspect", "--partition", "2", img)
	if code != exitOK || !strings.Contains(out, "Partition:    2\nFile system:  ext2") || !strings.Contains(out, "/vmlinuz-old") {
		t.Errorf("inspect --partition 2: exit %d\n%s", code, out)
	}
	if code, _ := run(t, "inspect", "--partition", "3", img); code != exitUsage {
		t.Errorf("inspect --partition 3 (swap): exit %d, want %d", code, exitUsage)
	}
	if code, _ := run(t, "inspect", "--partition", "1", filepath.Join(fixtureDir, "image.raw.zst")); code != exitUsage {
		t.Errorf("inspect --partition on a bare image: exit %d", code)
	}
}

// TestBlocksPartitions: P:BLOCK, --partition and disk --sectors agree with each other.
func TestBlocksPartitions(t *testing.T) {
	img, _ := needGPT(t)
	code, a := run(t, "blocks", "--format", "json", img, "2:1", "1:0")
	var got []blockInfo
	if err := json.Unmarshal([]byte(a), &got); code != exitOK || err != nil || len(got) != 2 ||
		got[0].Partition != 2 || got[0].Role != "superblock" || got[1].Partition != 1 || got[1].Role != "superblock" {
		t.Fatalf("blocks 2:1 1:0: exit %d %v %+v", code, err, got)
	}
	// Partition 2 starts at disk sector 100352; its 1 KiB block 1 is sectors 100354-100355.
	code, b := run(t, "blocks", "--sectors", "--format", "json", img, "100354", "0", "1", "40", "133120")
	got = nil
	if err := json.Unmarshal([]byte(b), &got); code != exitOK || err != nil || len(got) != 5 {
		t.Fatalf("blocks --sectors: exit %d %v\n%s", code, err, b)
	}
	roles := []string{got[0].Role, got[1].Role, got[2].Role, got[3].Role, got[4].Role}
	if got[0].Partition != 2 || got[0].Block != 1 || strings.Join(roles, ",") != "superblock,partition-table,partition-table,unpartitioned,swap" {
		t.Errorf("blocks --sectors: %+v", got)
	}
	if code, out := run(t, "blocks", "--partition", "2", img, "1"); code != exitOK || !strings.Contains(out, "superblock") {
		t.Errorf("blocks --partition 2 1: exit %d\n%s", code, out)
	}
	if code, _ := run(t, "blocks", img, "5"); code != exitUsage {
		t.Errorf("blocks without a partition on a partitioned disk: exit %d", code)
	}
}

// TestAnalyzeMount: jsonl and csv carry the partition; --mount puts paths under the mount
// point; without it, paths of several partitions say which one; a bad --mount is a usage error.
func TestAnalyzeMount(t *testing.T) {
	img, log := needGPT(t)
	code, out := run(t, "analyze", "--format", "jsonl", "--mount", "1=/", "--mount", "2=/boot", img, log)
	if code != exitOK || !strings.Contains(out, `{"seq":`) || !strings.Contains(out, `"op":"move","path":"/boot/vmlinuz-new","to":"/boot/vmlinuz","ino":16,"partition":2}`) {
		t.Errorf("analyze --mount jsonl: exit %d\n%s", code, out)
	}
	code, out = run(t, "analyze", img, log)
	if code != exitOK || !strings.Contains(out, "move    2:/vmlinuz-new -> 2:/vmlinuz") || !strings.Contains(out, "mkdir   1:/etc/app") {
		t.Errorf("analyze without --mount: exit %d\n%s", code, out)
	}
	code, out = run(t, "analyze", "--format", "csv", "--mount", "1=/", "--mount", "2=/boot", img, log)
	if code != exitOK || !strings.HasPrefix(out, "seq,t,op,path,to,ino,sector,bytes,kind,overwrite,size,reason,partition\n") ||
		!strings.Contains(out, ",mkdir,/etc/app,,") {
		t.Errorf("analyze csv: exit %d\n%s", code, out)
	}
	// A bare image's csv has no partition column.
	code, out = run(t, "analyze", "--format", "csv", filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst"))
	if code != exitOK || !strings.HasPrefix(out, "seq,t,op,path,to,ino,sector,bytes,kind,overwrite,size,reason\n") {
		t.Errorf("bare csv: exit %d\n%.200s", code, out)
	}
	for _, bad := range [][]string{{"--mount", "3=/swap"}, {"--mount", "9=/x"}, {"--mount", "1=boot"}, {"--mount", "x"}, {"--mount", "1=/", "--mount", "1=/a"}, {"--mount", "1=/", "--mount", "2=/"}} {
		if code, _ := run(t, append(append([]string{"analyze"}, bad...), img, log)...); code != exitUsage {
			t.Errorf("analyze %v: exit %d, want %d", bad, code, exitUsage)
		}
	}
	if code, _ := run(t, "analyze", "--mount", "1=/", filepath.Join(fixtureDir, "image.raw.zst"), filepath.Join(fixtureDir, "io.log.zst")); code != exitUsage {
		t.Errorf("--mount on a bare image: exit %d", code)
	}
}

// TestCheckPartition: check takes one partition's file system and the log's requests inside it;
// a partitioned disk without --partition, or a partition with no ext file system, is a usage error.
func TestCheckPartition(t *testing.T) {
	img, log := needGPT(t)
	for _, p := range []string{"1", "2"} {
		if code, out := run(t, "check", "--partition", p, img, log); code != exitOK || !strings.Contains(out, "consistency points checked, 0 findings") {
			t.Errorf("check --partition %s: exit %d\n%s", p, code, out)
		}
	}
	for _, args := range [][]string{{"check", img, log}, {"check", "--partition", "3", img, log}, {"check", "--partition", "7", img, log}} {
		if code, _ := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
