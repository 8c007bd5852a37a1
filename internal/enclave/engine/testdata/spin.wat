;; A contract whose WASI start function (_initialize) never returns: its
;; instantiation runs out of gas, and its deployment must be reported
;; failed.
(module
  (memory (export "memory") 1)
  (func (export "_initialize")
    loop $spin
      br $spin
    end)
  (func (export "phala_alloc") (param $n i32) (result i32)
    i32.const 1024)
  (func (export "handle_command") (param $p i32) (param $len i32) (result i32)
    i32.const 0)
  (func (export "handle_query") (param $p i32) (param $len i32) (result i32)
    i32.const 0))
