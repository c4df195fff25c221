package chstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A packed row is one row of a table as the bytes of its inserted columns'
// values, one after another in the table's column order: strings as a
// length and their bytes, integers as varints, dates and times as Unix
// seconds, a nullable value after a byte that says whether it is there, an
// array as a count and its strings.
//
// Load keeps its batch's rows packed until it inserts them, because what a
// batch keeps live is what bounds its size under the memory limit, and its
// size is what bounds ClickHouse's CPU per row (docs/performance.md,
// Memory). A decoded record is a tree of some forty objects and small
// strings that the garbage collector must mark on every cycle; its packed
// row is one buffer with no pointers in it, a little smaller than the
// message it came from, which the collector does not scan. An INSERT
// unpacks each block of rows into columns whose strings point into the
// packed rows: nothing is copied until the driver encodes the block.
//
// Packed rows are never changed once made (ForRecipient and Tombstone make
// new ones), which is what lets the columns alias them.

// kind is how a column's values are packed and unpacked.
type kind uint8

const (
	kindString kind = iota + 1
	kindUInt64
	kindUInt8
	kindInt16
	kindInt32
	kindInt64
	kindDate
	kindNullDate
	kindDateTime
	kindNullDateTime
	kindStringArray
)

func packString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func packUInt64(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func packUInt8(b []byte, v uint8) []byte   { return binary.AppendUvarint(b, uint64(v)) }
func packInt16(b []byte, v int16) []byte   { return binary.AppendVarint(b, int64(v)) }
func packInt32(b []byte, v int32) []byte   { return binary.AppendVarint(b, int64(v)) }
func packInt64(b []byte, v int64) []byte   { return binary.AppendVarint(b, v) }

// packTime packs a Date or DateTime as its Unix seconds: the columns take
// UTC instants (a Date at midnight), which Unix seconds give back exactly.
func packTime(b []byte, t time.Time) []byte { return binary.AppendVarint(b, t.Unix()) }

func packNullTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, 0)
	}
	return packTime(append(b, 1), *t)
}

func packStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = packString(b, s)
	}
	return b
}

// packRow appends r's inserted columns to b.
func packRow[R any](cols []column[R], r *R, b []byte) []byte {
	for i := range cols {
		if cols[i].pack != nil {
			b = cols[i].pack(r, b)
		}
	}
	return b
}

// packRowSized is r packed in a buffer of its own, of its size: a packed
// row lives until its batch is written, so slack in it would be memory held
// for nothing. It is packed first into a scratch buffer (at least hint
// bytes) that is used again, and then copied once.
func packRowSized[R any](cols []column[R], r *R, hint int) []byte {
	sp, _ := scratch.Get().(*[]byte)
	if sp == nil || cap(*sp) < hint {
		b := make([]byte, 0, hint)
		sp = &b
	}
	b := packRow(cols, r, (*sp)[:0])
	// append to nil rather than make and copy: no zeroing of bytes that are
	// written at once.
	out := append([]byte(nil), b...)
	*sp = b
	scratch.Put(sp)
	return out
}

// scratch holds packRowSized's buffers. A pool rather than a buffer per
// caller: stages call PackActivity from whichever goroutine processes a
// message, and a pool is safe for that without a lock. It holds no state
// but spare memory.
var scratch sync.Pool

var errPacked = errors.New("malformed packed row")

func unpackUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errPacked
	}
	return v, b[n:], nil
}

func unpackVarint(b []byte) (int64, []byte, error) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, nil, errPacked
	}
	return v, b[n:], nil
}

// unpackString is the string at the start of b, aliasing b (which is never
// changed: see above).
func unpackString(b []byte) (string, []byte, error) {
	n, b, err := unpackUvarint(b)
	if err != nil || n > uint64(len(b)) {
		return "", nil, errPacked
	}
	if n == 0 {
		return "", b, nil
	}
	return unsafe.String(unsafe.SliceData(b), int(n)), b[n:], nil
}

func unpackTime(b []byte) (time.Time, []byte, error) {
	s, b, err := unpackVarint(b)
	return time.Unix(s, 0).UTC(), b, err
}

// skipValue is b after its first value, of kind k.
func skipValue(k kind, b []byte) ([]byte, error) {
	var err error
	switch k {
	case kindString:
		_, b, err = unpackString(b)
	case kindUInt64, kindUInt8:
		_, b, err = unpackUvarint(b)
	case kindInt16, kindInt32, kindInt64, kindDate, kindDateTime:
		_, b, err = unpackVarint(b)
	case kindNullDate, kindNullDateTime:
		if len(b) == 0 {
			return nil, errPacked
		}
		if b[0] == 0 {
			return b[1:], nil
		}
		_, b, err = unpackVarint(b[1:])
	case kindStringArray:
		var n uint64
		n, b, err = unpackUvarint(b)
		for ; err == nil && n > 0; n-- {
			_, b, err = unpackString(b)
		}
	default:
		err = fmt.Errorf("no column kind %d", k)
	}
	return b, err
}

// packedLayout is where each inserted column of a table sits in its packed
// rows: its kind, by position, and its position, by name.
type packedLayout struct {
	kinds []kind
	pos   map[string]int
}

func layoutOf[R any](cols []column[R]) packedLayout {
	l := packedLayout{pos: map[string]int{}}
	for _, c := range cols {
		if c.inserted() {
			l.pos[c.name] = len(l.kinds)
			l.kinds = append(l.kinds, c.kind)
		}
	}
	return l
}

// value is the packed value of column name in b and the bytes after it
// (b[:len(b)-len(after)] is the value's own bytes).
func (l packedLayout) value(b []byte, name string) (value, after []byte, err error) {
	pos, ok := l.pos[name]
	if !ok {
		return nil, nil, fmt.Errorf("no inserted column %s", name)
	}
	for i := 0; i < pos; i++ {
		if b, err = skipValue(l.kinds[i], b); err != nil {
			return nil, nil, err
		}
	}
	after, err = skipValue(l.kinds[pos], b)
	return b, after, err
}

// str is the string column name of b ("" if b is malformed: the INSERT of
// such a row fails, with the reason).
func (l packedLayout) str(b []byte, name string) string {
	v, _, err := l.value(b, name)
	if err != nil {
		return ""
	}
	s, _, _ := unpackString(v)
	return s
}

// withStrings is a new packed row: b with the string columns of set
// replaced.
func (l packedLayout) withStrings(b []byte, set map[string]string) ([]byte, error) {
	replace := make(map[int]string, len(set))
	for name, s := range set {
		pos, ok := l.pos[name]
		if !ok || l.kinds[pos] != kindString {
			return nil, fmt.Errorf("no inserted string column %s", name)
		}
		replace[pos] = s
	}
	out := make([]byte, 0, len(b)+64*len(set))
	for i, k := range l.kinds {
		rest, err := skipValue(k, b)
		if err != nil {
			return nil, err
		}
		if s, ok := replace[i]; ok {
			out = packString(out, s)
		} else {
			out = append(out, b[:len(b)-len(rest)]...)
		}
		b = rest
	}
	return slices.Clip(out), nil
}

// builder unpacks one column of a block of packed rows into the typed slice
// its column takes (one columnar Append per block: a per-row Append(...any)
// would box every value). Its slices are kept from one block to the next.
type builder struct {
	kind  kind
	strs  []string
	u64s  []uint64
	u8s   []uint8
	i16s  []int16
	i32s  []int32
	i64s  []int64
	times []time.Time
	ptrs  []*time.Time
	arrs  [][]string
	elems []string
}

// reset empties c for a block of n rows, its slice made at n at once: no
// append grows it, and the times a nullable column points into never move.
func (c *builder) reset(n int) {
	c.strs, c.u64s, c.u8s = c.strs[:0], c.u64s[:0], c.u8s[:0]
	c.i16s, c.i32s, c.i64s = c.i16s[:0], c.i32s[:0], c.i64s[:0]
	c.ptrs, c.arrs, c.elems, c.times = c.ptrs[:0], c.arrs[:0], c.elems[:0], c.times[:0]
	switch c.kind {
	case kindString:
		c.strs = slices.Grow(c.strs, n)
	case kindUInt64:
		c.u64s = slices.Grow(c.u64s, n)
	case kindUInt8:
		c.u8s = slices.Grow(c.u8s, n)
	case kindInt16:
		c.i16s = slices.Grow(c.i16s, n)
	case kindInt32:
		c.i32s = slices.Grow(c.i32s, n)
	case kindInt64:
		c.i64s = slices.Grow(c.i64s, n)
	case kindDate, kindDateTime:
		c.times = slices.Grow(c.times, n)
	case kindNullDate, kindNullDateTime:
		c.times, c.ptrs = slices.Grow(c.times, n), slices.Grow(c.ptrs, n)
	case kindStringArray:
		c.arrs = slices.Grow(c.arrs, n)
	}
}

// read unpacks the value at the start of b and returns what follows it.
func (c *builder) read(b []byte) ([]byte, error) {
	var err error
	switch c.kind {
	case kindString:
		var s string
		s, b, err = unpackString(b)
		c.strs = append(c.strs, s)
	case kindUInt64:
		var v uint64
		v, b, err = unpackUvarint(b)
		c.u64s = append(c.u64s, v)
	case kindUInt8:
		var v uint64
		v, b, err = unpackUvarint(b)
		c.u8s = append(c.u8s, uint8(v))
	case kindInt16:
		var v int64
		v, b, err = unpackVarint(b)
		c.i16s = append(c.i16s, int16(v))
	case kindInt32:
		var v int64
		v, b, err = unpackVarint(b)
		c.i32s = append(c.i32s, int32(v))
	case kindInt64:
		var v int64
		v, b, err = unpackVarint(b)
		c.i64s = append(c.i64s, v)
	case kindDate, kindDateTime:
		var t time.Time
		t, b, err = unpackTime(b)
		c.times = append(c.times, t)
	case kindNullDate, kindNullDateTime:
		if len(b) == 0 {
			return nil, errPacked
		}
		if b[0] == 0 {
			c.ptrs = append(c.ptrs, nil)
			return b[1:], nil
		}
		var t time.Time
		t, b, err = unpackTime(b[1:])
		c.times = append(c.times, t)
		c.ptrs = append(c.ptrs, &c.times[len(c.times)-1])
	case kindStringArray:
		var n uint64
		n, b, err = unpackUvarint(b)
		start := len(c.elems)
		for ; err == nil && n > 0; n-- {
			var s string
			s, b, err = unpackString(b)
			c.elems = append(c.elems, s)
		}
		if len(c.elems) == start {
			// Empty, never nil: the driver refuses a nil array.
			c.arrs = append(c.arrs, []string{})
			break
		}
		// Three-index: a later row's append must not write into this one.
		c.arrs = append(c.arrs, c.elems[start:len(c.elems):len(c.elems)])
	default:
		err = fmt.Errorf("no column kind %d", c.kind)
	}
	return b, err
}

// values is the block's column, for the driver's Append.
func (c *builder) values() any {
	switch c.kind {
	case kindString:
		return c.strs
	case kindUInt64:
		return c.u64s
	case kindUInt8:
		return c.u8s
	case kindInt16:
		return c.i16s
	case kindInt32:
		return c.i32s
	case kindInt64:
		return c.i64s
	case kindDate, kindDateTime:
		return c.times
	case kindNullDate, kindNullDateTime:
		return c.ptrs
	case kindStringArray:
		return c.arrs
	}
	return nil
}

// insert sends rows as one INSERT: packed, then as insertPacked sends them.
func insert[R any](ctx context.Context, conn driver.Conn, db string, observe InsertObserver, table string, cols []column[R], rows []R) error {
	packed := make([][]byte, len(rows))
	for i := range rows {
		packed[i] = packRow(cols, &rows[i], nil)
	}
	return insertPacked(ctx, conn, db, observe, table, cols, nil, len(packed), func(i int) []byte { return packed[i] })
}

// insertPacked sends n packed rows (row(i) is the i-th) as one INSERT, in
// blocks of blockRows. send picks the columns sent (nil: every inserted
// column); the rows hold them all.
func insertPacked[R any](ctx context.Context, conn driver.Conn, db string, observe InsertObserver, table string, cols []column[R],
	send func(column[R]) bool, n int, row func(i int) []byte) error {
	if n == 0 {
		return nil
	}
	bl := newBlock(cols, send)
	batch, err := conn.PrepareBatch(ctx, insertSQL(db, table, bl.sent()))
	if err != nil {
		return fmt.Errorf("insert into %s.%s: prepare: %w", db, table, err)
	}
	defer batch.Close()
	for start := 0; start < n; start += blockRows {
		end := min(start+blockRows, n)
		if err := bl.fill(start, end, row); err != nil {
			return fmt.Errorf("insert into %s.%s: %w", db, table, err)
		}
		if err := bl.appendTo(batch); err != nil {
			return fmt.Errorf("insert into %s.%s: %w", db, table, err)
		}
		if end-start == blockRows {
			if err := batch.Flush(); err != nil {
				return fmt.Errorf("insert %d rows into %s.%s: send a block: %w", n, db, table, err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s.%s: %w", n, db, table, err)
	}
	if observe != nil {
		observe(table, n)
	}
	return nil
}

// block is the columns of one block of an INSERT, unpacked from packed
// rows; its builders are kept from one block to the next.
type block[R any] struct {
	cols     []column[R] // the inserted columns, in packed order
	sends    []bool      // whether the INSERT sends cols[i]
	builders []builder
}

func newBlock[R any](cols []column[R], send func(column[R]) bool) *block[R] {
	bl := &block[R]{}
	for _, c := range cols {
		if c.inserted() {
			bl.cols = append(bl.cols, c)
			bl.sends = append(bl.sends, send == nil || send(c))
			bl.builders = append(bl.builders, builder{kind: c.kind})
		}
	}
	return bl
}

// sent is the columns the INSERT sends.
func (bl *block[R]) sent() []column[R] {
	var out []column[R]
	for i, c := range bl.cols {
		if bl.sends[i] {
			out = append(out, c)
		}
	}
	return out
}

// fill unpacks rows start to end-1 into the builders.
func (bl *block[R]) fill(start, end int, row func(i int) []byte) error {
	for i := range bl.builders {
		bl.builders[i].reset(end - start)
	}
	var err error
	for r := start; r < end; r++ {
		b := row(r)
		for i := range bl.builders {
			if b, err = bl.builders[i].read(b); err != nil {
				return fmt.Errorf("row %d, column %s: %w", r, bl.cols[i].name, err)
			}
		}
		if len(b) != 0 {
			return fmt.Errorf("row %d: %d bytes after its last column: %w", r, len(b), errPacked)
		}
	}
	return nil
}

// appendTo appends the block's sent columns to batch.
func (bl *block[R]) appendTo(batch driver.Batch) error {
	j := 0
	for i := range bl.builders {
		if !bl.sends[i] {
			continue
		}
		if err := batch.Column(j).Append(bl.builders[i].values()); err != nil {
			return fmt.Errorf("column %s: %w", bl.cols[i].name, err)
		}
		j++
	}
	return nil
}
