;; A contract whose init refuses to run (status 1, with a message):
;; its deployment must be reported failed with that message.
(module
  (import "phala" "output" (func $output (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "init refuses: no owner given")
  (func (export "phala_alloc") (param $n i32) (result i32)
    i32.const 1024)
  (func (export "init") (param $p i32) (param $len i32) (result i32)
    i32.const 0
    i32.const 28
    call $output
    i32.const 1)
  (func (export "handle_command") (param $p i32) (param $len i32) (result i32)
    i32.const 0)
  (func (export "handle_query") (param $p i32) (param $len i32) (result i32)
    i32.const 0))
