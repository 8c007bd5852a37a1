//go:build wasip1

package contract

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"
)

// The ABI: pRuntime writes inputs into buffers it gets from phala_alloc,
// calls an entry point with (ptr, len) and reads the result, which the
// contract hands over with phala_output, and the status it returns
// (0: ok, 1: error, output is the message).

//go:wasmimport phala storage_get
func hostStorageGet(keyPtr unsafe.Pointer, keyLen uint32, valPtr unsafe.Pointer, valCap uint32) int32

//go:wasmimport phala storage_set
func hostStorageSet(keyPtr unsafe.Pointer, keyLen uint32, valPtr unsafe.Pointer, valLen uint32)

//go:wasmimport phala storage_remove
func hostStorageRemove(keyPtr unsafe.Pointer, keyLen uint32)

//go:wasmimport phala caller
func hostCaller(dst unsafe.Pointer)

//go:wasmimport phala block_height
func hostHeight() int64

//go:wasmimport phala block_time
func hostTime() int64

//go:wasmimport phala emit
func hostEmit(topicPtr unsafe.Pointer, topicLen uint32, payloadPtr unsafe.Pointer, payloadLen uint32)

//go:wasmimport phala random
func hostRandom(dst unsafe.Pointer, n uint32)

//go:wasmimport phala output
func hostOutput(ptr unsafe.Pointer, n uint32)

//go:wasmimport phala self
func hostSelf(dst unsafe.Pointer)

//go:wasmimport phala escrow
func hostEscrow(dst unsafe.Pointer)

//go:wasmimport phala call
func hostCall(toPtr unsafe.Pointer, payloadPtr unsafe.Pointer, payloadLen uint32, gas uint64, sealed uint32) int32

//go:wasmimport phala pay
func hostPay(toPtr unsafe.Pointer, amount uint64, id uint64) int32

// pending and buffers keep host-written inputs referenced until the call
// returns: pending the one a host gets before each call (phala_alloc, then
// the entry point), buffers any others.
var (
	pending []byte
	buffers = map[uintptr][]byte{}
)

//go:wasmexport phala_alloc
func phalaAlloc(n uint32) unsafe.Pointer {
	b := make([]byte, n+1)
	p := unsafe.Pointer(&b[0])
	if pending == nil {
		pending = b
	} else {
		buffers[uintptr(p)] = b
	}
	return p
}

func take(ptr unsafe.Pointer, n uint32) []byte {
	if pending != nil && unsafe.Pointer(&pending[0]) == ptr {
		b := pending
		pending = nil
		return b[:n]
	}
	b := buffers[uintptr(ptr)]
	delete(buffers, uintptr(ptr))
	if b == nil {
		return nil
	}
	return b[:n]
}

func ptrOf(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

type wasmHost struct{ readOnly bool }

// scratch receives storage values; Get returns a copy of exactly the value.
var scratch = make([]byte, 1024)

func (wasmHost) Get(key []byte) ([]byte, bool) {
	for {
		n := hostStorageGet(ptrOf(key), uint32(len(key)), ptrOf(scratch), uint32(len(scratch)))
		if n < 0 {
			return nil, false
		}
		if int(n) <= len(scratch) {
			return append([]byte(nil), scratch[:n]...), true
		}
		scratch = make([]byte, n)
	}
}
func (wasmHost) getUint64(key []byte) (uint64, bool) {
	if hostStorageGet(ptrOf(key), uint32(len(key)), ptrOf(scratch), uint32(len(scratch))) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(scratch), true
}

// u64 is the value setUint64 hands over (the host copies it).
var u64 [8]byte

func (wasmHost) setUint64(key []byte, v uint64) {
	binary.BigEndian.PutUint64(u64[:], v)
	hostStorageSet(ptrOf(key), uint32(len(key)), unsafe.Pointer(&u64[0]), 8)
}

func (wasmHost) Set(key, value []byte) {
	hostStorageSet(ptrOf(key), uint32(len(key)), ptrOf(value), uint32(len(value)))
}
func (wasmHost) Remove(key []byte) { hostStorageRemove(ptrOf(key), uint32(len(key))) }

// addrBuf receives addresses from the host (a local would escape).
var addrBuf Address

func (wasmHost) Caller() Address {
	hostCaller(unsafe.Pointer(&addrBuf[0]))
	return addrBuf
}
func (wasmHost) Height() int64     { return hostHeight() }
func (wasmHost) Time() time.Time   { return time.Unix(0, hostTime()).UTC() }
func (h wasmHost) ReadOnly() bool  { return h.readOnly }
func (wasmHost) Random(dst []byte) { hostRandom(ptrOf(dst), uint32(len(dst))) }
func (wasmHost) Emit(topic string, payload []byte) {
	t := []byte(topic)
	hostEmit(ptrOf(t), uint32(len(t)), ptrOf(payload), uint32(len(payload)))
}

func (wasmHost) Self() Address {
	var a Address
	hostSelf(unsafe.Pointer(&a[0]))
	return a
}
func (wasmHost) Escrow() Address {
	var a Address
	hostEscrow(unsafe.Pointer(&a[0]))
	return a
}
func (wasmHost) CallContract(to Address, payload []byte, gas uint64, sealed bool) error {
	s := uint32(0)
	if sealed {
		s = 1
	}
	if hostCall(unsafe.Pointer(&to[0]), ptrOf(payload), uint32(len(payload)), gas, s) != 0 {
		return ErrUnknownContract
	}
	return nil
}
func (wasmHost) Pay(to Address, amount, id uint64) error {
	if hostPay(unsafe.Pointer(&to[0]), amount, id) != 0 {
		return errors.New("contract: payout refused by pRuntime")
	}
	return nil
}

// The contexts of calls: a handler that keeps one sees the same.
var (
	commandContext = NewContext(wasmHost{readOnly: false})
	queryContext   = NewContext(wasmHost{readOnly: true})
)

func run(h Handler, readOnly bool, ptr unsafe.Pointer, n uint32) uint32 {
	input := take(ptr, n)
	c := commandContext
	if readOnly {
		c = queryContext
	}
	out, err := Call(h, c, input)
	if err != nil {
		msg := []byte(err.Error())
		hostOutput(ptrOf(msg), uint32(len(msg)))
		return 1
	}
	hostOutput(ptrOf(out), uint32(len(out)))
	return 0
}

//go:wasmexport init
func abiInit(ptr unsafe.Pointer, n uint32) uint32 {
	if registered.Init == nil {
		take(ptr, n)
		return 0
	}
	return run(registered.Init, false, ptr, n)
}

//go:wasmexport handle_command
func abiCommand(ptr unsafe.Pointer, n uint32) uint32 { return run(registered.Command, false, ptr, n) }

//go:wasmexport handle_query
func abiQuery(ptr unsafe.Pointer, n uint32) uint32 { return run(registered.Query, true, ptr, n) }

//go:wasmexport handle_event
func abiEvent(ptr unsafe.Pointer, n uint32) uint32 {
	return run(func(c *Context, input []byte) ([]byte, error) { return HandleEvent(registered, c, input) }, false, ptr, n)
}
