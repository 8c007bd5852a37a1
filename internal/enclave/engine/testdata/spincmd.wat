;; A contract whose every command loops forever: each runs out of the gas
;; its sender declared (what a buggy or hostile command costs a worker).
;; Queries answer at once.
(module
  (memory (export "memory") 1)
  (func (export "phala_alloc") (param $n i32) (result i32)
    i32.const 1024)
  (func (export "handle_command") (param $p i32) (param $len i32) (result i32)
    loop $spin
      br $spin
    end
    i32.const 0)
  (func (export "handle_query") (param $p i32) (param $len i32) (result i32)
    i32.const 0))
