//! Properties of the stack-trace parsers on arbitrary and mutated input:
//! no panic, bounded output, the same answer twice.

use proptest::prelude::*;
use sigsentry_domain::correlation::{
    LineRange, MAX_FRAMES, ParsedTrace, parse_hunk_ranges, parse_trace, split_unified_diff,
};

/// Real-looking traces of every format, to mutate.
const SEEDS: [&str; 8] = [
    "Traceback (most recent call last):\n  File \"/app/web/views.py\", line 12, in checkout\n    return cart.total()\n  File \"/app/checkout/cart.py\", line 42, in total\n    rate = rates[self.currency]\nKeyError: 'currency'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/app/web/views.py\", line 14, in checkout\nValueError: bad\n",
    "Exception in thread \"main\" java.lang.IllegalStateException: x\n\tat com.acme.cart.Cart.total(Cart.java:42)\n\tat app//com.acme.Main.main(Main.kt:5)\nCaused by: java.lang.NullPointerException\n\tat com.acme.cart.Price.parse(Price.java:17)\n\t... 2 more\n",
    "TypeError: x is undefined\n    at Cart.total (/app/src/cart.js:42:13)\n    at async checkout (file:///app/src/checkout.mjs:10:5)\n    at new Order (webpack:///./src/order.ts:5:3)\n    at Array.map (<anonymous>)\n",
    "panic: boom\n\ngoroutine 1 [running]:\ngithub.com/acme/svc/internal/cart.(*Cart).Total(0x0)\n\t/build/internal/cart/cart.go:42 +0x1d\nmain.main()\n\t/build/cmd/svc/main.go:15 +0x25\n",
    "thread 'main' panicked at src/cart.rs:42:18:\nboom\nstack backtrace:\n   0: rust_begin_unwind\n             at /rustc/abc/library/std/src/panicking.rs:645:5\n   4: shop::cart::total\n             at ./src/cart.rs:42:18\n",
    "/app/lib/cart.rb:42:in 'Cart#total': undefined method '+' for nil (NoMethodError)\n\tfrom /app/lib/checkout.rb:10:in 'block in run'\n",
    "System.InvalidOperationException: x\n ---> System.NullReferenceException: y\n   at Acme.Cart.Price.Parse(String s) in /src/Price.cs:line 17\n   --- End of inner exception stack trace ---\n   at Acme.Cart.Cart.Total() in C:\\src\\Cart.cs:line 42\n",
    "2026-11-22T10:00:00Z ERROR [pod] Traceback (most recent call last):\n2026-11-22T10:00:00Z ERROR [pod]   File \"/app/x.py\", line 1, in f\n2026-11-22T10:00:00Z ERROR [pod] KeyError: 1\n",
];

/// One edit of a trace.
#[derive(Debug, Clone)]
enum Edit {
    InsertByte(usize, u8),
    DeleteByte(usize),
    DuplicateLine(usize),
    DeleteLine(usize),
    PrefixLines(String),
    InsertText(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::InsertByte(i, b)),
        any::<usize>().prop_map(Edit::DeleteByte),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::DeleteLine),
        "[ -~]{0,24}".prop_map(Edit::PrefixLines),
        (
            any::<usize>(),
            prop::sample::select(vec![
                "at ",
                "File \"",
                ".go:",
                ":in ",
                "(",
                ")",
                ":",
                "\n",
                "é",
                "\t",
                "--->",
                "panicked at "
            ])
        )
            .prop_map(|(i, s)| Edit::InsertText(i, s.to_owned())),
    ]
}

/// Applies edits on bytes, then reads the result back lossily (as the HTTP
/// layer would hand over a string).
fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        match edit {
            Edit::InsertByte(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.insert(at, *b);
            }
            Edit::DeleteByte(i) if !bytes.is_empty() => {
                let at = i % bytes.len();
                bytes.remove(at);
            }
            Edit::DeleteByte(_) => {}
            Edit::DuplicateLine(i) | Edit::DeleteLine(i) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let at = i % lines.len();
                if matches!(edit, Edit::DuplicateLine(_)) {
                    lines.insert(at, lines[at]);
                } else {
                    lines.remove(at);
                }
                bytes = lines.join("\n").into_bytes();
            }
            Edit::PrefixLines(prefix) => {
                let text = String::from_utf8_lossy(&bytes).into_owned();
                bytes = text.split('\n').map(|l| format!("{prefix}{l}")).collect::<Vec<_>>().join("\n").into_bytes();
            }
            Edit::InsertText(i, text) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, text.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(trace: &ParsedTrace) {
    assert!(trace.frames.len() <= MAX_FRAMES);
    if trace.frames.is_empty() {
        assert_eq!(trace.language.as_str(), "unknown");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let trace = parse_trace(&text);
        check(&trace);
        prop_assert_eq!(&trace, &parse_trace(&text));
    }

    #[test]
    fn trace_like_text_never_panics(text in "([ -~]|\n|\t|é|at |File \"|, line |\\.go:|:in |goroutine 1 \\[running\\]:|Caused by: |panicked at ){0,200}") {
        let trace = parse_trace(&text);
        check(&trace);
        prop_assert_eq!(&trace, &parse_trace(&text));
    }

    #[test]
    fn mutated_real_traces_never_panic(seed in prop::sample::select(SEEDS.to_vec()), edits in prop::collection::vec(edit(), 0..12)) {
        let text = apply(seed, &edits);
        let trace = parse_trace(&text);
        check(&trace);
        prop_assert_eq!(&trace, &parse_trace(&text));
    }

    #[test]
    fn mutated_traces_keep_their_frames_under_a_prefix(seed in prop::sample::select(SEEDS.to_vec()), prefix in "(\\[[a-z0-9-]{1,12}\\] |2026-11-22T10:00:0[0-9]Z |ERROR ){1,3}") {
        let plain = parse_trace(seed);
        let prefixed = parse_trace(&apply(seed, &[Edit::PrefixLines(prefix)]));
        prop_assert_eq!(plain.language, prefixed.language);
        prop_assert_eq!(plain.frames.len(), prefixed.frames.len());
    }

    #[test]
    fn diffs_never_panic(text in "(@@ -[0-9]{1,12}(,[0-9]{1,12})? \\+[0-9]{1,12}(,[0-9]{1,12})? @@|diff --git a/[a-z ]{0,5} b/[a-z]{0,5}|--- |\\+\\+\\+ |rename (from|to) |/dev/null|\"|\\\\[0-7]{1,3}|[ -~]|\n){0,80}") {
        for file in split_unified_diff(&text) {
            prop_assert!(file.ranges.iter().all(|r| r.start >= 1 && r.start <= r.end));
        }
        let ranges = parse_hunk_ranges(&text);
        prop_assert_eq!(LineRange::decode_list(&LineRange::encode_list(&ranges)), ranges);
    }

    #[test]
    fn range_lists_decode_leniently(text in "[0-9,\\- x]{0,64}") {
        let ranges = LineRange::decode_list(&text);
        prop_assert!(ranges.windows(2).all(|w| w[0].end < w[1].start));
    }
}

#[test]
fn a_quarter_megabyte_of_garbage_or_one_long_line() {
    let garbage: String =
        (0..256 * 1024u32).map(|i| char::from(b' ' + u8::try_from((i * 7919) % 95).unwrap())).collect();
    let trace = parse_trace(&garbage);
    assert!(trace.frames.len() <= MAX_FRAMES);
    let one_line = format!("at {}", "a.b(C.java:1) at ".repeat(16 * 1024));
    check(&parse_trace(&one_line));
    let many_lines = "\tat com.acme.A.b(A.java:1)\n".repeat(10_000);
    let trace = parse_trace(&many_lines);
    assert_eq!(trace.frames.len(), MAX_FRAMES);
    assert!(trace.truncated);
    let oversized = "x\n".repeat(200 * 1024);
    assert!(parse_trace(&oversized).truncated);
}
