;; Grows its memory by 1 MiB at a time, forever: stopped by the memory limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more
      (drop (memory.grow (i32.const 16)))
      (br $more))))
