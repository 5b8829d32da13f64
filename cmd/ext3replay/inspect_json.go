package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// writeInspectJSON writes doc, a struct whose last field is Files (json "files"), exactly as a
// json.Encoder indenting by two spaces does, with files as that field. encoding/json builds the
// whole document in memory and indents it in a second copy (170 MB and half of inspect's time for
// 100,000 files); here the rest of the document is encoded by encoding/json with the field left
// nil, and the files are written one by one after it. inspect_json_test.go compares the two.
func writeInspectJSON(w io.Writer, doc any, files []inspectFile) error {
	head, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	const tail = "\"files\": null\n}"
	if len(files) == 0 || !bytes.HasSuffix(head, []byte(tail)) {
		return errNotLast
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:len(head)-len(" null\n}")])
	bw.WriteString(" [\n")
	var b []byte
	for i := range files {
		f := &files[i]
		b = append(b[:0], "    {\n      \"path\": "...)
		b = appendJSONString(b, f.Path)
		b = append(b, ",\n      \"ino\": "...)
		b = strconv.AppendUint(b, uint64(f.Ino), 10)
		b = append(b, ",\n      \"type\": "...)
		b = appendJSONString(b, f.Type)
		b = append(b, ",\n      \"mode\": "...)
		b = appendJSONString(b, f.Mode)
		b = append(b, ",\n      \"links\": "...)
		b = strconv.AppendUint(b, uint64(f.Links), 10)
		b = append(b, ",\n      \"size\": "...)
		b = strconv.AppendUint(b, f.Size, 10)
		b = append(b, ",\n      \"blocks\": "...)
		b = strconv.AppendUint(b, f.Blocks, 10)
		if f.Htree {
			b = append(b, ",\n      \"htree\": true"...)
		}
		if f.Target != "" {
			b = append(b, ",\n      \"target\": "...)
			b = appendJSONString(b, f.Target)
		}
		if f.Device != "" {
			b = append(b, ",\n      \"device\": "...)
			b = appendJSONString(b, f.Device)
		}
		b = append(b, "\n    }"...)
		if i < len(files)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
		bw.Write(b)
	}
	bw.WriteString("  ]\n}\n")
	return bw.Flush()
}

// errNotLast: writeInspectJSON was given a document it cannot splice the files into (no files,
// or a files field that is not last); the caller encodes it whole.
var errNotLast = errors.New("inspect json: no files, or the files field is not last")

// appendJSONString appends s as encoding/json quotes it: printable ASCII other than the quote,
// the backslash and the HTML characters <, > and & (escaped by default) is copied; any other
// string is left to encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
