;; Opens "hello.txt" in the first pre-opened directory (fd 3) and writes
;; {"opened":true}; when WASI refuses, writes {"error":"path_open refused"} and
;; exits with status 1.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello.txt")
  (data (i32.const 200) "{\"opened\":true}")
  (data (i32.const 300) "{\"error\":\"path_open refused\"}")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start")
    ;; fd 3, follow symlinks, path, no oflags, rights: fd_read (2), no fdflags.
    (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 9)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 16))
      (then
        (call $print (i32.const 300) (i32.const 29))
        (call $proc_exit (i32.const 1))))
    (call $print (i32.const 200) (i32.const 15))))
