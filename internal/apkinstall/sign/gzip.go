package sign

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/gzip"
)

// GzipMember compresses data into one gzip member at maximum compression with no name and a zero
// timestamp in the header (gzip -n -9), so equal input gives equal bytes.
func GzipMember(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	return b.Bytes(), nil
}
