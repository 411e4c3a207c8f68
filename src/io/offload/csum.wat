;; Internet checksum inner loop in WebAssembly SIMD, for the offload path's packet slabs
;; (csum-wasm.ts holds the compiled bytes; `node scripts/wasm.mjs` rebuilds them from this
;; file, and test/unit/offload/csum-wasm.test.ts checks that they match).
;;
;; sum16(p, n): the ones'-complement sum of the little-endian 16-bit words of mem[p, p + n)
;; (n even, n <= 262144), folded to 16 bits, not complemented. Summing little-endian words
;; gives the byte-swapped sum of the big-endian words RFC 1071 adds; the caller swaps back.
;;
;; Each 16-byte load is widened pairwise into four 32-bit lanes (i32x4.extadd_pairwise_i16x8_u:
;; at most 2 * 65535 per lane per load); two accumulators take two loads each per 64-byte round,
;; so a lane holds at most 4096 rounds * 262140 < 2^32 for the largest n allowed.
(module
  (import "env" "mem" (memory 0))
  (func (export "sum16") (param $p i32) (param $n i32) (result i32)
    (local $end i32)
    (local $a v128)
    (local $b v128)
    (local $s i64)
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (block $done64
      (loop $round64
        (br_if $done64 (i32.gt_u (i32.add (local.get $p) (i32.const 64)) (local.get $end)))
        (local.set $a (i32x4.add (local.get $a) (i32x4.extadd_pairwise_i16x8_u (v128.load (local.get $p)))))
        (local.set $b (i32x4.add (local.get $b) (i32x4.extadd_pairwise_i16x8_u (v128.load offset=16 (local.get $p)))))
        (local.set $a (i32x4.add (local.get $a) (i32x4.extadd_pairwise_i16x8_u (v128.load offset=32 (local.get $p)))))
        (local.set $b (i32x4.add (local.get $b) (i32x4.extadd_pairwise_i16x8_u (v128.load offset=48 (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $round64)))
    (block $done16
      (loop $round16
        (br_if $done16 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
        (local.set $a (i32x4.add (local.get $a) (i32x4.extadd_pairwise_i16x8_u (v128.load (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 16)))
        (br $round16)))
    ;; the eight lanes, widened to 64 bits
    (local.set $s
      (i64.add
        (i64.add
          (i64.add (i64.extend_i32_u (i32x4.extract_lane 0 (local.get $a))) (i64.extend_i32_u (i32x4.extract_lane 1 (local.get $a))))
          (i64.add (i64.extend_i32_u (i32x4.extract_lane 2 (local.get $a))) (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $a)))))
        (i64.add
          (i64.add (i64.extend_i32_u (i32x4.extract_lane 0 (local.get $b))) (i64.extend_i32_u (i32x4.extract_lane 1 (local.get $b))))
          (i64.add (i64.extend_i32_u (i32x4.extract_lane 2 (local.get $b))) (i64.extend_i32_u (i32x4.extract_lane 3 (local.get $b)))))))
    ;; the last up to 14 bytes, a word at a time
    (block $done2
      (loop $word
        (br_if $done2 (i32.gt_u (i32.add (local.get $p) (i32.const 2)) (local.get $end)))
        (local.set $s (i64.add (local.get $s) (i64.load16_u (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 2)))
        (br $word)))
    ;; fold to 16 bits: s < 2^35 here
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xffffffff)) (i64.shr_u (local.get $s) (i64.const 32))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xffff)) (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xffff)) (i64.shr_u (local.get $s) (i64.const 16))))
    (local.set $s (i64.add (i64.and (local.get $s) (i64.const 0xffff)) (i64.shr_u (local.get $s) (i64.const 16))))
    (i32.wrap_i64 (local.get $s))))
