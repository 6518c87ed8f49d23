use super::{prefixed, summary};
use crate::correlation::{ExceptionInfo, FrameGroup, Language, MAX_FRAMES, parse_trace};

fn exception(kind: &str, message: &str) -> Option<ExceptionInfo> {
    Some(ExceptionInfo { kind: kind.into(), message: message.into() })
}

const PYTHON: &str = r#"Traceback (most recent call last):
  File "/usr/local/lib/python3.12/site-packages/flask/app.py", line 880, in full_dispatch_request
    rv = self.dispatch_request()
         ^^^^^^^^^^^^^^^^^^^^^^^
  File "/app/web/views.py", line 12, in checkout
    return cart.total()
  File "/app/checkout/cart.py", line 42, in total
    rate = rates[self.currency]
           ~~~~~^^^^^^^^^^^^^^^
KeyError: 'currency'"#;

#[test]
fn python_innermost_first() {
    let trace = parse_trace(PYTHON);
    assert_eq!(trace.language, Language::Python);
    assert_eq!(trace.exception, exception("KeyError", "'currency'"));
    assert_eq!(
        summary(&trace),
        vec![
            (Some("/app/checkout/cart.py"), Some("total"), Some(42)),
            (Some("/app/web/views.py"), Some("checkout"), Some(12)),
            (Some("/usr/local/lib/python3.12/site-packages/flask/app.py"), Some("full_dispatch_request"), Some(880)),
        ]
    );
    assert!(!trace.truncated);
}

#[test]
fn python_with_log_prefixes_on_every_line() {
    for prefix in [
        "2026-11-22T10:00:00.123Z ERROR ",
        "2026-11-22 10:00:00,123 [checkout-7d9f-x2] [error] ",
        "Nov 29 10:00:00 web-1 checkout[4121]: ",
        "pod/checkout-7d9f-x2 app ",
        "checkout-api-1  | ",
        "2026-11-22T10:00:00.123456789Z stderr F ",
    ] {
        let trace = parse_trace(&prefixed(prefix, PYTHON));
        assert_eq!(trace.language, Language::Python, "{prefix}");
        assert_eq!(trace.exception, exception("KeyError", "'currency'"), "{prefix}");
        assert_eq!(trace.frames.len(), 3, "{prefix}");
        assert_eq!(trace.frames[0].file.as_deref(), Some("/app/checkout/cart.py"), "{prefix}");
        assert_eq!(trace.frames[0].line, Some(42), "{prefix}");
    }
}

#[test]
fn python_chains_keep_the_reported_exception_first_and_the_root_cause() {
    let text = r#"Traceback (most recent call last):
  File "/app/checkout/rates.py", line 7, in rate_for
    return RATES[currency]
KeyError: 'EUR'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/web/views.py", line 12, in checkout
    return cart.total()
  File "/app/checkout/cart.py", line 44, in total
    raise PricingError("no rate") from e
checkout.errors.PricingError: no rate"#;
    let trace = parse_trace(text);
    assert_eq!(trace.exception, exception("KeyError", "'EUR'"));
    assert_eq!(
        summary(&trace),
        vec![
            (Some("/app/checkout/cart.py"), Some("total"), Some(44)),
            (Some("/app/web/views.py"), Some("checkout"), Some(12)),
            (Some("/app/checkout/rates.py"), Some("rate_for"), Some(7)),
        ]
    );
    let groups: Vec<FrameGroup> = trace.frames.iter().map(|f| f.group).collect();
    assert_eq!(groups, [FrameGroup::Raised, FrameGroup::Raised, FrameGroup::Cause(1)]);

    let during = text.replace(
        "The above exception was the direct cause of the following exception:",
        "During handling of the above exception, another exception occurred:",
    );
    assert_eq!(parse_trace(&during).frames[2].group, FrameGroup::Cause(1));
}

#[test]
fn python_frozen_and_bare_exception() {
    let text = "Traceback (most recent call last):\n  File \"<frozen runpy>\", line 198, in _run_module_as_main\n  File \"/app/main.py\", line 3, in <module>\n    main()\nKeyboardInterrupt\n";
    let trace = parse_trace(text);
    assert_eq!(trace.exception, exception("KeyboardInterrupt", ""));
    assert_eq!(trace.frames[0].function.as_deref(), Some("<module>"));
    assert_eq!(trace.frames[1].file.as_deref(), Some("<frozen runpy>"));
}

const JAVA: &str = "Exception in thread \"main\" java.lang.IllegalStateException: checkout failed
\tat com.acme.cart.Cart.total(Cart.java:42)
\tat com.acme.cart.Cart$Inner.apply(Cart.java:88)
\tat app//com.acme.api.CheckoutController.post(CheckoutController.kt:30)
\tat java.base@17.0.2/java.lang.Thread.run(Thread.java:833)
\tat jdk.internal.reflect.GeneratedMethodAccessor12.invoke(Unknown Source)
\tat java.base/jdk.internal.misc.Unsafe.park(Native Method)
Caused by: java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"s\" is null
\tat com.acme.cart.Price.parse(Price.java:17)
\tat com.acme.cart.Cart.total(Cart.java:40)
\t... 4 more
\tSuppressed: java.io.IOException: close failed
\t\tat com.acme.io.Stream.close(Stream.java:9)
\t\t... 5 more";

#[test]
fn java_with_causes_and_suppressed() {
    let trace = parse_trace(JAVA);
    assert_eq!(trace.language, Language::Java);
    assert_eq!(
        trace.exception,
        exception("java.lang.NullPointerException", "Cannot invoke \"String.length()\" because \"s\" is null")
    );
    let s = summary(&trace);
    assert_eq!(s[0], (Some("Cart.java"), Some("total"), Some(42)));
    assert_eq!(s[1], (Some("Cart.java"), Some("apply"), Some(88)));
    assert_eq!(trace.frames[1].module.as_deref(), Some("com.acme.cart.Cart$Inner"));
    assert_eq!(s[2], (Some("CheckoutController.kt"), Some("post"), Some(30)));
    assert_eq!(trace.frames[2].module.as_deref(), Some("com.acme.api.CheckoutController"));
    assert_eq!(trace.frames[3].module.as_deref(), Some("java.lang.Thread"));
    assert_eq!(s[4], (None, Some("invoke"), None));
    assert_eq!(s[5], (None, Some("park"), None));
    assert_eq!(s[6], (Some("Price.java"), Some("parse"), Some(17)));
    assert_eq!(trace.frames[6].group, FrameGroup::Cause(1));
    assert_eq!(s[8], (Some("Stream.java"), Some("close"), Some(9)));
    assert!(matches!(trace.frames[8].group, FrameGroup::Related(_)));
    assert_eq!(trace.frames.len(), 9);
}

#[test]
fn java_logged_by_logback_with_a_prefix_on_the_first_line_only() {
    let text = format!(
        "2026-11-22 10:00:00.123 ERROR 1 --- [nio-8080-exec-1] c.a.api.CheckoutController : Checkout failed: order 12\n{JAVA}"
    );
    let trace = parse_trace(&text);
    assert_eq!(trace.language, Language::Java);
    assert_eq!(trace.frames.len(), 9);
    assert_eq!(trace.exception.unwrap().kind, "java.lang.NullPointerException");
}

#[test]
fn java_with_a_prefix_on_every_line() {
    let trace = parse_trace(&prefixed("[checkout-7d9f] 2026-11-22T10:00:00Z ", JAVA));
    assert_eq!(trace.language, Language::Java);
    assert_eq!(trace.frames.len(), 9);
    assert_eq!(trace.frames[0].line, Some(42));
}

const NODE: &str = "TypeError: Cannot read properties of undefined (reading 'rate')
    at Cart.total (/app/src/cart.js:42:13)
    at async checkout (file:///app/src/checkout.mjs:10:5)
    at new Order (webpack:///./src/order.ts:5:3)
    at /app/src/index.js:3:1
    at Array.map (<anonymous>)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    at Object.<anonymous> (/app/node_modules/express/lib/router/index.js:284:7)
    at async Promise.all (index 0)";

#[test]
fn javascript_v8() {
    let trace = parse_trace(NODE);
    assert_eq!(trace.language, Language::JavaScript);
    assert_eq!(trace.exception, exception("TypeError", "Cannot read properties of undefined (reading 'rate')"));
    let s = summary(&trace);
    assert_eq!(s[0], (Some("/app/src/cart.js"), Some("Cart.total"), Some(42)));
    assert_eq!(trace.frames[0].column, Some(13));
    assert_eq!(s[1], (Some("file:///app/src/checkout.mjs"), Some("checkout"), Some(10)));
    assert_eq!(s[2], (Some("webpack:///./src/order.ts"), Some("new Order"), Some(5)));
    assert_eq!(s[3], (Some("/app/src/index.js"), None, Some(3)));
    assert_eq!(s[4], (None, Some("Array.map"), None));
    assert_eq!(s[5], (Some("node:internal/modules/cjs/loader"), Some("Module._compile"), Some(1256)));
    assert_eq!(s[6].1, Some("Object.<anonymous>"));
    assert_eq!(s[7], (None, Some("Promise.all"), None));
}

#[test]
fn typescript_logged_as_a_json_string() {
    let json = NODE.replace('\n', "\\n");
    let line = format!("{{\"level\":\"error\",\"stack\":\"{json}\"}}");
    let trace = parse_trace(&line);
    assert_eq!(trace.language, Language::JavaScript);
    assert_eq!(trace.frames.len(), 8);
    assert_eq!(trace.frames[2].file.as_deref(), Some("webpack:///./src/order.ts"));
}

#[test]
fn node_error_cause() {
    let text = "Error: checkout failed\n    at checkout (/app/src/checkout.js:10:5) {\n  [cause]: TypeError: x is undefined\n      at rate (/app/src/rates.js:3:9)\n}";
    let trace = parse_trace(text);
    assert_eq!(trace.exception, exception("TypeError", "x is undefined"));
    assert_eq!(trace.frames[1].group, FrameGroup::Cause(1));
    assert_eq!(trace.frames[1].file.as_deref(), Some("/app/src/rates.js"));
}

const GO: &str = "panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 7 [chan receive, 5 minutes]:
github.com/acme/svc/internal/queue.(*Worker).Run(0xc000010000)
\t/build/internal/queue/worker.go:88 +0x45
created by main.main in goroutine 1
\t/build/cmd/svc/main.go:20 +0x66

goroutine 1 [running]:
github.com/acme/svc/internal/cart.(*Cart).Total(0x0, {0x0, 0x0})
\t/build/internal/cart/cart.go:42 +0x1d
main.main()
\t/build/cmd/svc/main.go:15 +0x25
runtime.main()
\t/usr/local/go/src/runtime/proc.go:267 +0x2bb
exit status 2";

#[test]
fn go_panicking_goroutine_first() {
    let trace = parse_trace(GO);
    assert_eq!(trace.language, Language::Go);
    assert_eq!(trace.exception, exception("panic", "runtime error: invalid memory address or nil pointer dereference"));
    let s = summary(&trace);
    assert_eq!(s[0], (Some("/build/internal/cart/cart.go"), Some("(*Cart).Total"), Some(42)));
    assert_eq!(trace.frames[0].module.as_deref(), Some("github.com/acme/svc/internal/cart"));
    assert_eq!(s[1], (Some("/build/cmd/svc/main.go"), Some("main"), Some(15)));
    assert_eq!(trace.frames[1].module.as_deref(), Some("main"));
    assert_eq!(s[2], (Some("/usr/local/go/src/runtime/proc.go"), Some("main"), Some(267)));
    assert_eq!(s[3], (Some("/build/internal/queue/worker.go"), Some("(*Worker).Run"), Some(88)));
    assert_eq!(s[4], (Some("/build/cmd/svc/main.go"), Some("main"), Some(20)));
    assert_eq!(trace.frames[3].group, FrameGroup::Related(1));
}

#[test]
fn go_with_prefixes() {
    let trace = parse_trace(&prefixed("2026/11/22 10:00:00 ", GO));
    assert_eq!(trace.language, Language::Go);
    assert_eq!(trace.frames[0].line, Some(42));
    assert_eq!(trace.frames[0].function.as_deref(), Some("(*Cart).Total"));
}

const RUST: &str = "thread 'main' panicked at src/cart.rs:42:18:
called `Option::unwrap()` on a `None` value
stack backtrace:
   0: rust_begin_unwind
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/std/src/panicking.rs:645:5
   1: core::panicking::panic_fmt
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/panicking.rs:72:14
   2: core::panicking::panic
   3: core::option::unwrap_failed
   4: shop::cart::Cart::total
             at ./src/cart.rs:42:18
   5: shop::main
             at ./src/main.rs:10:5
   6: core::ops::function::FnOnce::call_once
             at /rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/ops/function.rs:250:5
note: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.";

#[test]
fn rust_backtrace() {
    let trace = parse_trace(RUST);
    assert_eq!(trace.language, Language::Rust);
    assert_eq!(trace.exception, exception("panic", "called `Option::unwrap()` on a `None` value"));
    let s = summary(&trace);
    assert_eq!(s.len(), 7);
    assert_eq!(s[0].1, Some("rust_begin_unwind"));
    assert_eq!(s[2], (None, Some("core::panicking::panic"), None));
    assert_eq!(s[4], (Some("./src/cart.rs"), Some("shop::cart::Cart::total"), Some(42)));
    assert_eq!(s[5], (Some("./src/main.rs"), Some("shop::main"), Some(10)));
}

#[test]
fn rust_old_form_and_full_backtrace() {
    let text = "thread 'main' panicked at 'index out of bounds: the len is 3 but the index is 5', src/main.rs:10:5\nnote: run with `RUST_BACKTRACE=1`";
    let trace = parse_trace(text);
    assert_eq!(trace.language, Language::Rust);
    assert_eq!(trace.exception, exception("panic", "index out of bounds: the len is 3 but the index is 5"));
    assert_eq!(summary(&trace), vec![(Some("src/main.rs"), None, Some(10))]);

    let full = "thread 'tokio-runtime-worker' panicked at src/cart.rs:1:1:\nboom\nstack backtrace:\n  12:     0x55f1c3a0b1c2 - shop::cart::total::h3b7c0d2e1f4a5b6c\n                               at /build/src/cart.rs:1:1\n";
    let trace = parse_trace(full);
    assert_eq!(summary(&trace), vec![(Some("/build/src/cart.rs"), Some("shop::cart::total"), Some(1))]);
}

#[test]
fn ruby_classic_and_3_4() {
    let classic = "/app/lib/cart.rb:42:in `total': undefined method `+' for nil:NilClass (NoMethodError)\n\tfrom /app/lib/checkout.rb:10:in `block in run'\n\tfrom /usr/local/bundle/gems/rack-2.2.8/lib/rack/builder.rb:244:in `call'\n\tfrom app.rb:3:in `<main>'";
    let trace = parse_trace(classic);
    assert_eq!(trace.language, Language::Ruby);
    assert_eq!(trace.exception, exception("NoMethodError", "undefined method `+' for nil:NilClass"));
    let s = summary(&trace);
    assert_eq!(s[0], (Some("/app/lib/cart.rb"), Some("total"), Some(42)));
    assert_eq!(s[1], (Some("/app/lib/checkout.rb"), Some("block in run"), Some(10)));
    assert_eq!(s[3], (Some("app.rb"), Some("<main>"), Some(3)));

    let modern = "app/models/cart.rb:42:in 'Cart#total': undefined method '+' for nil (NoMethodError)\n\tfrom app/controllers/checkout_controller.rb:10:in 'CheckoutController#create'";
    let trace = parse_trace(&prefixed("I, [2026-11-22T10:00:00.123 #1]  ", modern));
    assert_eq!(trace.language, Language::Ruby);
    assert_eq!(trace.exception, exception("NoMethodError", "undefined method '+' for nil"));
    assert_eq!(summary(&trace)[0], (Some("app/models/cart.rb"), Some("Cart#total"), Some(42)));
    assert_eq!(summary(&trace)[1].1, Some("CheckoutController#create"));
}

#[test]
fn ruby_2_7_terminal_order_is_reversed() {
    let text = "Traceback (most recent call last):\n\t2: from app.rb:9:in `<main>'\n\t1: from app.rb:5:in `run'\napp.rb:2:in `total': boom (RuntimeError)";
    let trace = parse_trace(text);
    assert_eq!(trace.language, Language::Ruby);
    assert_eq!(trace.exception, exception("RuntimeError", "boom"));
    let lines: Vec<Option<u32>> = trace.frames.iter().map(|f| f.line).collect();
    assert_eq!(lines, [Some(2), Some(5), Some(9)]);
}

const DOTNET: &str = r"Unhandled exception. System.InvalidOperationException: Checkout failed
 ---> System.NullReferenceException: Object reference not set to an instance of an object.
   at Acme.Cart.Price.Parse(String s) in /src/Acme.Cart/Price.cs:line 17
   at Acme.Cart.Cart.Total() in /src/Acme.Cart/Cart.cs:line 40
   --- End of inner exception stack trace ---
   at Acme.Cart.Cart.Total() in C:\src\Acme.Cart\Cart.cs:line 42
   at Acme.Api.CheckoutController.Post(Order order)
   at lambda_method(Closure , Object , Object[] )
   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.Execute(IActionResultTypeMapper mapper, ObjectMethodExecutor executor, Object controller, Object[] arguments)";

#[test]
fn dotnet_inner_exceptions() {
    let trace = parse_trace(DOTNET);
    assert_eq!(trace.language, Language::DotNet);
    assert_eq!(
        trace.exception,
        exception("System.NullReferenceException", "Object reference not set to an instance of an object.")
    );
    let s = summary(&trace);
    assert_eq!(s[0], (Some("C:\\src\\Acme.Cart\\Cart.cs"), Some("Total"), Some(42)));
    assert_eq!(trace.frames[0].module.as_deref(), Some("Acme.Cart.Cart"));
    assert_eq!(s[1], (None, Some("Post"), None));
    assert_eq!(s[2].1, Some("lambda_method"));
    assert_eq!(s[3].1, Some("Execute"));
    assert_eq!(s[4], (Some("/src/Acme.Cart/Price.cs"), Some("Parse"), Some(17)));
    assert_eq!(trace.frames[4].group, FrameGroup::Cause(1));
    assert_eq!(s.len(), 6);
}

#[test]
fn dotnet_with_prefixes() {
    let trace = parse_trace(&prefixed("2026-11-22T10:00:00Z [checkout-api] fail: ", DOTNET));
    assert_eq!(trace.language, Language::DotNet);
    assert_eq!(trace.frames.len(), 6);
}

#[test]
fn garbage_is_unknown() {
    for text in ["", "hello world", "at at at at", "File \"x\"", "::::\n\t\t\n(((((", "panic:", "goroutine 1 ["] {
        let trace = parse_trace(text);
        assert_eq!(trace.language, Language::Unknown, "{text}");
        assert!(trace.frames.is_empty(), "{text}");
        assert_eq!(trace.exception, None, "{text}");
    }
}

#[test]
fn frames_are_capped() {
    let mut text = String::from("java.lang.StackOverflowError\n");
    for i in 0..2000 {
        text.push_str(&format!("\tat com.acme.Rec.go(Rec.java:{})\n", i + 1));
    }
    let trace = parse_trace(&text);
    assert_eq!(trace.frames.len(), MAX_FRAMES);
    assert!(trace.truncated);
    assert_eq!(trace.frames[0].line, Some(1));
}

#[test]
fn python_deep_recursion_keeps_the_innermost_frames() {
    let mut text = String::from("Traceback (most recent call last):\n");
    for i in 0..800 {
        text.push_str(&format!("  File \"/app/rec.py\", line {}, in go\n    go()\n", i + 1));
    }
    text.push_str("RecursionError: maximum recursion depth exceeded\n");
    let trace = parse_trace(&text);
    assert_eq!(trace.frames.len(), MAX_FRAMES);
    assert_eq!(trace.frames[0].line, Some(800));
    assert!(trace.truncated);
}

#[test]
fn huge_inputs_stay_bounded() {
    let line = "x".repeat(256 * 1024);
    let trace = parse_trace(&line);
    assert_eq!(trace.language, Language::Unknown);
    let at_lines = "at ".repeat(100_000);
    assert!(parse_trace(&at_lines).frames.len() <= MAX_FRAMES);
    let multibyte = "é".repeat(200_000);
    assert!(parse_trace(&multibyte).truncated);
}

#[test]
fn python_exception_groups() {
    let text = "  + Exception Group Traceback (most recent call last):\n  |   File \"/app/x.py\", line 3, in <module>\n  |     run()\n  | ExceptionGroup: boom (1 sub-exception)\n  +-+---------------- 1 ----------------\n    | Traceback (most recent call last):\n    |   File \"/app/y.py\", line 9, in f\n    | ValueError: bad\n    +------------------------------------\n";
    let trace = parse_trace(text);
    assert_eq!(trace.language, Language::Python);
    assert_eq!(trace.exception, exception("ExceptionGroup", "boom (1 sub-exception)"));
    assert_eq!(
        summary(&trace),
        vec![(Some("/app/x.py"), Some("<module>"), Some(3)), (Some("/app/y.py"), Some("f"), Some(9))]
    );
}
