;; Reads the wall clock and writes {"frozen":true} when it says the Unix epoch.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 200) "{\"frozen\":true} ")
  (data (i32.const 300) "{\"frozen\":false}")
  (func (export "_start")
    (local $msg i32)
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 16)))
    (local.set $msg
      (select (i32.const 200) (i32.const 300) (i64.eqz (i64.load (i32.const 16)))))
    (i32.store (i32.const 0) (local.get $msg))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
