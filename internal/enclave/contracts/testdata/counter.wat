;; A counter contract written by hand against the contract ABI: no SDK, no
;; Go, no WASI. Storage key "n" holds an i64 (little-endian).
;;   handle_command: input "inc" adds 1 and outputs the new value (8 bytes);
;;                   input "trap" writes 1000, then traps (the write must
;;                   not survive); anything else fails with a message.
;;   handle_query:   outputs the value; input "write" tries to write (the
;;                   host refuses: queries are read-only).
(module
  (import "phala" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "phala" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (data (i32.const 0) "n")
  (data (i32.const 16) "unknown command")

  ;; phala_alloc: a bump allocator; inputs are small and the instance lives
  ;; for many calls, so wrap around at 60 KiB.
  (func (export "phala_alloc") (param $n i32) (result i32)
    (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $n
    i32.add
    global.set $heap
    global.get $heap
    i32.const 61440
    i32.gt_u
    if
      i32.const 1024
      global.set $heap
      i32.const 1024
      local.set $p
    end
    local.get $p)

  ;; load the counter into memory[8..16) (0 if absent) and return it
  (func $load (result i64)
    i32.const 8
    i64.const 0
    i64.store
    i32.const 0 i32.const 1 i32.const 8 i32.const 8
    call $get
    drop
    i32.const 8
    i64.load)

  (func $store (param $v i64)
    i32.const 8
    local.get $v
    i64.store
    i32.const 0 i32.const 1 i32.const 8 i32.const 8
    call $set)

  ;; input equals the 3 bytes "inc" / 4 bytes "trap"?
  (func $is (param $p i32) (param $len i32) (param $word i32) (param $wlen i32) (result i32)
    local.get $len
    local.get $wlen
    i32.ne
    if
      i32.const 0
      return
    end
    local.get $wlen
    i32.const 3
    i32.eq
    if (result i32)
      local.get $p
      i32.load
      i32.const 0x00ffffff
      i32.and
      local.get $word
      i32.eq
    else
      local.get $p
      i32.load
      local.get $word
      i32.eq
    end)

  (func (export "handle_command") (param $p i32) (param $len i32) (result i32)
    ;; "inc" = 0x636e69 little-endian
    local.get $p local.get $len i32.const 0x636e69 i32.const 3
    call $is
    if
      call $load
      i64.const 1
      i64.add
      call $store
      i32.const 8 i32.const 8
      call $output
      i32.const 0
      return
    end
    ;; "trap" = 0x70617274
    local.get $p local.get $len i32.const 0x70617274 i32.const 4
    call $is
    if
      i64.const 1000
      call $store
      unreachable
    end
    i32.const 16 i32.const 15
    call $output
    i32.const 1)

  (func (export "handle_query") (param $p i32) (param $len i32) (result i32)
    ;; "writ" prefix of "write" = 0x74697277
    local.get $len
    i32.const 5
    i32.eq
    if
      local.get $p
      i32.load
      i32.const 0x74697277
      i32.eq
      if
        i64.const 7
        call $store
      end
    end
    call $load
    drop
    i32.const 8 i32.const 8
    call $output
    i32.const 0))
