package pkgstream

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand"
	"testing"
)

func gz(t testing.TB, data []byte, hdr gzip.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Header = hdr
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// withHeaderCRC sets FHCRC on a member made by compress/gzip (which cannot write it).
func withHeaderCRC(m []byte) []byte {
	n, _ := gzipHeaderLen(m)
	out := append([]byte{}, m[:n]...)
	out[3] |= 0x02
	out = binary.LittleEndian.AppendUint16(out, uint16(crc32.ChecksumIEEE(out)))
	return append(out, m[n:]...)
}

func TestGunzip(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	noisy := make([]byte, 20000)
	rng.Read(noisy)
	text := bytes.Repeat([]byte("#!/bin/sh\nexec true\n"), 5000)
	next := gz(t, []byte("the next member"), gzip.Header{})
	tests := []struct {
		name string
		data []byte
		m    []byte
	}{
		{"empty", nil, gz(t, nil, gzip.Header{})},
		{"small", []byte("pkgname = x\n"), gz(t, []byte("pkgname = x\n"), gzip.Header{})},
		{"noisy", noisy, gz(t, noisy, gzip.Header{})},
		{"text", text, gz(t, text, gzip.Header{})},
		{"name, comment, extra", text, gz(t, text, gzip.Header{Name: "control.tar", Comment: "c", Extra: []byte{1, 2, 3, 4}})},
		{"header CRC", text, withHeaderCRC(gz(t, text, gzip.Header{Name: "x"}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := append(append([]byte{}, tc.m...), next...)
			for _, size := range []int{len(tc.data), len(tc.data) + 1, 2*len(tc.data) + 300, 1, 4096} {
				got, end, err := gunzip(m, make([]byte, size), 1<<20)
				if err != nil || !bytes.Equal(got, tc.data) || end != len(tc.m) {
					t.Fatalf("gunzip(buffer %d) = %d bytes, end %d, %v; want %d bytes, end %d",
						size, len(got), end, err, len(tc.data), len(tc.m))
				}
			}
			if len(tc.data) > 10 {
				out := make([]byte, len(tc.data)/2)
				n, _, err := gunzipInto(out, m)
				if err != errShort || !bytes.Equal(out[:n], tc.data[:n]) {
					t.Errorf("gunzipInto(half) = %d, %v; want errShort and a prefix", n, err)
				}
				if _, _, err := gunzip(m, nil, len(tc.data)-1); !errors.Is(err, ErrFormat) {
					t.Errorf("gunzip over the limit: %v, want ErrFormat", err)
				}
			}
		})
	}
}

func TestGunzipBroken(t *testing.T) {
	text := bytes.Repeat([]byte("control segment "), 700)
	m := gz(t, text, gzip.Header{Name: "n"})
	n, _ := gzipHeaderLen(m)
	edit := func(at int, v byte) []byte {
		b := append([]byte{}, m...)
		b[at] ^= v
		return b
	}
	badHCRC := withHeaderCRC(m)
	badHCRC[n+1] ^= 1 // the CRC-16 is the header's last two bytes
	tests := []struct {
		name string
		m    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"header cut", m[:6], ErrTruncated},
		{"name cut", m[:11], ErrTruncated},
		{"deflate cut", m[:len(m)/2], ErrTruncated},
		{"just the deflate stream", m[:len(m)-8], ErrTruncated},
		{"trailer cut", m[:len(m)-3], ErrTruncated},
		{"bad magic", edit(0, 1), ErrFormat},
		{"not deflate", edit(2, 1), ErrFormat},
		{"reserved flag", edit(3, 0x20), ErrFormat},
		{"header CRC wrong", badHCRC, ErrFormat},
		{"CRC", edit(len(m)-6, 1), ErrFormat},
		{"size", edit(len(m)-2, 1), ErrFormat},
		{"deflate damaged", edit(n, 0x06), ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := gunzip(tc.m, make([]byte, 100), 1<<20); !errors.Is(err, tc.want) {
				t.Fatalf("gunzip() error = %v, want %v", err, tc.want)
			}
		})
	}
}
