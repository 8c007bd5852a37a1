;; A test contract for pRuntime's resource bounds, written against the
;; contract ABI (contract/ABI.md).
;;   handle_command: input is two little-endian i32, count and size: it
;;                   stores size bytes (zeros) under key "n", then emits
;;                   count messages of topic "t" with size-byte payloads.
;;   handle_query:   an empty input outputs the length of the value under
;;                   "n" (4 bytes); anything else spins until stopped (by
;;                   gas, or by the query's deadline or cancellation).
(module
  (import "phala" "storage_get" (func $get (param i32 i32 i32 i32) (result i32)))
  (import "phala" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "phala" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 40)
  (data (i32.const 0) "n")
  (data (i32.const 2) "t")

  ;; inputs are at most a few bytes: one fixed buffer
  (func (export "phala_alloc") (param $n i32) (result i32)
    i32.const 1024)

  (func (export "handle_command") (param $p i32) (param $len i32) (result i32)
    (local $count i32) (local $size i32) (local $i i32)
    local.get $p
    i32.load
    local.set $count
    local.get $p
    i32.const 4
    i32.add
    i32.load
    local.set $size
    i32.const 0 i32.const 1 i32.const 65536 local.get $size
    call $set
    block $done
      loop $next
        local.get $i
        local.get $count
        i32.ge_u
        br_if $done
        i32.const 2 i32.const 1 i32.const 65536 local.get $size
        call $emit
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br $next
      end
    end
    i32.const 0)

  (func (export "handle_query") (param $p i32) (param $len i32) (result i32)
    local.get $len
    if
      loop $spin
        br $spin
      end
    end
    i32.const 16
    i32.const 0 i32.const 1 i32.const 65536 i32.const 0
    call $get
    i32.store
    i32.const 16 i32.const 4
    call $output
    i32.const 0))
