use crate::PathPrefix;
use crate::correlation::{
    Frame, FrameClass, FrameMapping, Language, MapOptions, MappingScope, PathIndex, RepoPath, Unmapped, classify,
    parse_trace,
};

fn file(path: &str) -> Frame {
    Frame { file: Some(path.into()), ..Frame::default() }
}

fn mapped(mapping: &FrameMapping) -> (&str, &str, usize) {
    match mapping {
        FrameMapping::Mapped(m) => (m.file.repository.as_str(), m.file.path.as_str(), m.matched_components),
        FrameMapping::Unmapped(u) => panic!("unmapped: {u:?}: {}", u.message()),
    }
}

fn unmapped(mapping: &FrameMapping) -> &Unmapped {
    match mapping {
        FrameMapping::Unmapped(u) => u,
        FrameMapping::Mapped(m) => panic!("mapped to {}", m.file),
    }
}

fn index() -> PathIndex {
    [
        ("acme/shop", "checkout/cart.py"),
        ("acme/shop", "tests/checkout/test_cart.py"),
        ("acme/shop", "web/views.py"),
        ("acme/shop", "README.md"),
        ("acme/billing", "src/billing/invoice.py"),
        ("acme/billing", "web/views.py"),
    ]
    .into_iter()
    .collect()
}

#[test]
fn longest_suffix_wins_whatever_the_runtime_root() {
    let index = index();
    let options = MapOptions::default();
    for runtime in ["/app/checkout/cart.py", "/srv/build/checkout/cart.py", "checkout/cart.py"] {
        let m = index.map_frame(&file(runtime), Language::Python, &options);
        assert_eq!(mapped(&m), ("acme/shop", "checkout/cart.py", 2), "{runtime}");
    }
    // A unique file name alone is enough.
    let m = index.map_frame(&file("/opt/other/place/invoice.py"), Language::Python, &options);
    assert_eq!(mapped(&m), ("acme/billing", "src/billing/invoice.py", 1));
}

#[test]
fn same_path_in_two_repositories_is_ambiguous_unless_scoped() {
    let index = index();
    let frame = file("/app/web/views.py");
    let m = index.map_frame(&frame, Language::Python, &MapOptions::default());
    let Unmapped::Ambiguous { candidates, total } = unmapped(&m) else { panic!("{m:?}") };
    assert_eq!(*total, 2);
    assert_eq!(candidates[0], RepoPath { repository: "acme/billing".into(), path: "web/views.py".into() });
    assert_eq!(unmapped(&m).as_str(), "AMBIGUOUS");
    assert!(unmapped(&m).message().contains("acme/billing:web/views.py and acme/shop:web/views.py"));

    let scoped = MapOptions {
        scope: Some(MappingScope { repository: "acme/shop".into(), path_prefix: PathPrefix::root() }),
        not_synced: vec![],
    };
    assert_eq!(mapped(&index.map_frame(&frame, Language::Python, &scoped)), ("acme/shop", "web/views.py", 2));
}

#[test]
fn monorepo_prefix_decides() {
    let index: PathIndex = [
        ("acme/mono", "services/checkout/app/handlers/cart.py"),
        ("acme/mono", "services/billing/app/handlers/cart.py"),
    ]
    .into_iter()
    .collect();
    let frame = file("/app/handlers/cart.py");
    let unscoped = index.map_frame(&frame, Language::Python, &MapOptions::default());
    assert_eq!(unmapped(&unscoped).as_str(), "AMBIGUOUS");
    let options = MapOptions {
        scope: Some(MappingScope {
            repository: "acme/mono".into(),
            path_prefix: PathPrefix::new("services/billing").unwrap(),
        }),
        not_synced: vec![],
    };
    let m = index.map_frame(&frame, Language::Python, &options);
    assert_eq!(mapped(&m), ("acme/mono", "services/billing/app/handlers/cart.py", 3));
}

#[test]
fn deeper_match_beats_a_name_match_and_whole_path_breaks_ties() {
    let index: PathIndex =
        [("r", "cart.py"), ("r", "legacy/cart.py"), ("r", "app/checkout/cart.py")].into_iter().collect();
    let m = index.map_frame(&file("/srv/app/checkout/cart.py"), Language::Python, &MapOptions::default());
    assert_eq!(mapped(&m), ("r", "app/checkout/cart.py", 3));
    // `/deploy/cart.py` matches all three by name only; only `cart.py` is
    // matched whole (the deployment root is the repository root).
    let m = index.map_frame(&file("/deploy/cart.py"), Language::Python, &MapOptions::default());
    assert_eq!(mapped(&m), ("r", "cart.py", 1));
    // Two partial matches and no whole one: ambiguous.
    let index: PathIndex = [("r", "a/x/cart.py"), ("r", "b/x/cart.py")].into_iter().collect();
    let m = index.map_frame(&file("/srv/x/cart.py"), Language::Python, &MapOptions::default());
    assert_eq!(unmapped(&m).as_str(), "AMBIGUOUS");
}

#[test]
fn java_maps_by_package() {
    let index: PathIndex = [
        ("acme/shop", "cart/src/main/java/com/acme/cart/Cart.java"),
        ("acme/shop", "legacy/src/main/java/com/acme/old/Cart.java"),
        ("acme/shop", "api/src/main/kotlin/com/acme/api/CheckoutController.kt"),
        ("acme/shop", "api/src/main/kotlin/com/acme/api/Pricing.kt"),
    ]
    .into_iter()
    .collect();
    let trace = parse_trace(
        "java.lang.IllegalStateException: x\n\
         \tat com.acme.cart.Cart$Inner.total(Cart.java:42)\n\
         \tat app//com.acme.api.CheckoutController.post(CheckoutController.kt:30)\n\
         \tat com.acme.api.PricingKt.price(Unknown Source)\n\
         \tat java.base/java.lang.Thread.run(Thread.java:833)\n\
         \tat jdk.internal.misc.Unsafe.park(Native Method)\n",
    );
    let maps = index.map_trace(&trace, &MapOptions::default());
    assert_eq!(mapped(&maps[0]), ("acme/shop", "cart/src/main/java/com/acme/cart/Cart.java", 4));
    assert_eq!(mapped(&maps[1]), ("acme/shop", "api/src/main/kotlin/com/acme/api/CheckoutController.kt", 4));
    // Kotlin top-level functions, no line: the class still names the file.
    assert_eq!(mapped(&maps[2]), ("acme/shop", "api/src/main/kotlin/com/acme/api/Pricing.kt", 4));
    assert_eq!(unmapped(&maps[3]), &Unmapped::LibraryFrame { why: "the Java standard library (java.*)" });
    assert_eq!(unmapped(&maps[4]).as_str(), "LIBRARY_FRAME");
}

#[test]
fn go_maps_by_file_and_import_path() {
    let index: PathIndex = [
        ("acme/svc", "internal/cart/cart.go"),
        ("acme/svc", "internal/legacy/cart/cart.go"),
        ("acme/svc", "cmd/svc/main.go"),
        ("acme/tools", "cmd/svc/main.go"),
    ]
    .into_iter()
    .collect();
    let trace = parse_trace(
        "panic: boom\n\ngoroutine 1 [running]:\n\
         github.com/acme/svc/internal/cart.(*Cart).Total(0x0)\n\t/build/internal/cart/cart.go:42 +0x1d\n\
         main.main()\n\t/build/cmd/svc/main.go:15 +0x25\n\
         runtime.main()\n\t/usr/local/go/src/runtime/proc.go:267 +0x2bb\n",
    );
    let maps = index.map_trace(&trace, &MapOptions::default());
    assert_eq!(mapped(&maps[0]), ("acme/svc", "internal/cart/cart.go", 3));
    assert_eq!(unmapped(&maps[1]).as_str(), "AMBIGUOUS");
    assert_eq!(unmapped(&maps[2]).as_str(), "LIBRARY_FRAME");

    // -trimpath builds print module paths.
    let trimmed = Frame {
        file: Some("github.com/acme/svc/internal/cart/cart.go".into()),
        module: Some("github.com/acme/svc/internal/cart".into()),
        ..Frame::default()
    };
    let m = index.map_frame(&trimmed, Language::Go, &MapOptions::default());
    assert_eq!(mapped(&m), ("acme/svc", "internal/cart/cart.go", 3));
    let dependency = file("/root/go/pkg/mod/github.com/lib/pq@v1.10.9/conn.go");
    assert_eq!(unmapped(&index.map_frame(&dependency, Language::Go, &MapOptions::default())).as_str(), "LIBRARY_FRAME");
}

#[test]
fn windows_urls_and_bundler_paths() {
    let index: PathIndex =
        [("acme/web", "src/App/Checkout/Cart.cs"), ("acme/web", "src/order.ts"), ("acme/web", "src/index.js")]
            .into_iter()
            .collect();
    let options = MapOptions::default();
    let m = index.map_frame(&file("C:\\build\\src\\app\\Checkout\\Cart.cs"), Language::DotNet, &options);
    assert_eq!(mapped(&m), ("acme/web", "src/App/Checkout/Cart.cs", 4));
    let m = index.map_frame(&file("webpack:///./src/order.ts"), Language::JavaScript, &options);
    assert_eq!(mapped(&m), ("acme/web", "src/order.ts", 2));
    let m = index.map_frame(&file("file:///app/src/index.js"), Language::JavaScript, &options);
    assert_eq!(mapped(&m), ("acme/web", "src/index.js", 2));
    // Case matters outside Windows paths.
    let m = index.map_frame(&file("/app/src/app/checkout/cart.cs"), Language::DotNet, &options);
    assert_eq!(unmapped(&m).as_str(), "NOT_IN_REPOSITORY");
}

#[test]
fn not_synced_and_not_in_repository() {
    let index = index();
    let frame = file("/app/payments/stripe.py");
    let m = index.map_frame(&frame, Language::Python, &MapOptions::default());
    assert_eq!(unmapped(&m), &Unmapped::NotInRepository { suffix: "app/payments/stripe.py".into() });
    assert_eq!(
        unmapped(&m).message(),
        "No connected repository has a file ending in app/payments/stripe.py; check the service mapping's pathPrefix or connect the repository."
    );
    let options = MapOptions { scope: None, not_synced: vec!["acme/payments".into()] };
    let m = index.map_frame(&frame, Language::Python, &options);
    assert_eq!(unmapped(&m), &Unmapped::NotSynced { repositories: vec!["acme/payments".into()] });
    assert!(unmapped(&m).message().contains("acme/payments is not known yet"));
    // A file that a synced repository has still maps.
    let m = index.map_frame(&file("/app/checkout/cart.py"), Language::Python, &options);
    assert_eq!(mapped(&m).1, "checkout/cart.py");
    // The service's own repository is not synced: a name-only match
    // elsewhere is not trusted.
    let scoped = MapOptions {
        scope: Some(MappingScope { repository: "acme/payments".into(), path_prefix: PathPrefix::root() }),
        not_synced: vec!["acme/payments".into()],
    };
    let m = index.map_frame(&file("/x/y/invoice.py"), Language::Python, &scoped);
    assert_eq!(unmapped(&m).as_str(), "NOT_SYNCED");
}

#[test]
fn library_and_fileless_frames_say_why() {
    let index = index();
    let options = MapOptions::default();
    let cases = [
        (
            file("/usr/local/lib/python3.12/site-packages/flask/app.py"),
            Language::Python,
            "a third-party package (site-packages)",
        ),
        (file("/usr/lib/python3.11/json/decoder.py"), Language::Python, "the Python standard library"),
        (file("<frozen importlib._bootstrap>"), Language::Python, "the Python runtime (a frozen module)"),
        (file("/app/node_modules/express/lib/router.js"), Language::JavaScript, "a dependency (node_modules)"),
        (file("node:internal/process/task_queues"), Language::JavaScript, "the Node.js runtime (node:)"),
        (
            file("/usr/local/cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.0.0/src/lib.rs"),
            Language::Rust,
            "a crate from the Cargo registry (cargo/registry)",
        ),
        (file("/rustc/90b35a/library/core/src/ops/function.rs"), Language::Rust, "the Rust standard library (/rustc/)"),
        (file("/usr/local/bundle/gems/rack-2.2.8/lib/rack/builder.rb"), Language::Ruby, "a gem (/gems/)"),
        (file("/usr/local/lib/ruby/3.3.0/json/common.rb"), Language::Ruby, "the Ruby standard library"),
        (file("/usr/local/go/src/net/http/server.go"), Language::Go, "the Go standard library (GOROOT)"),
    ];
    for (frame, language, why) in cases {
        assert_eq!(classify(&frame, language), FrameClass::Library(why), "{frame:?}");
        let m = index.map_frame(&frame, language, &options);
        assert_eq!(unmapped(&m).message(), format!("This frame is in {why}, not in your code."));
    }
    let rust_std = Frame { function: Some("core::panicking::panic".into()), ..Frame::default() };
    assert!(matches!(classify(&rust_std, Language::Rust), FrameClass::Library(_)));
    let dotnet =
        Frame { module: Some("System.Linq.Enumerable".into()), function: Some("First".into()), ..Frame::default() };
    assert!(matches!(classify(&dotnet, Language::DotNet), FrameClass::Library(_)));
    let anonymous = Frame { function: Some("Array.map".into()), ..Frame::default() };
    assert_eq!(classify(&anonymous, Language::JavaScript), FrameClass::NoFile);
    assert_eq!(unmapped(&index.map_frame(&anonymous, Language::JavaScript, &options)).as_str(), "NO_FILE");
    // An explicit inApp wins both ways.
    let forced = Frame { in_app: Some(true), ..file("/app/node_modules/ours/cart.py") };
    assert_eq!(classify(&forced, Language::Python), FrameClass::InApp);
    let excluded = Frame { in_app: Some(false), ..file("/app/checkout/cart.py") };
    assert!(matches!(classify(&excluded, Language::Python), FrameClass::Library(_)));
}

#[test]
fn two_hundred_thousand_paths() {
    let mut index = PathIndex::new();
    for repo in 0..4 {
        for dir in 0..500 {
            for f in 0..100 {
                // Many shared names (`__init__.py`, `util.py`) across directories.
                let name = match f {
                    0 => "__init__.py".to_owned(),
                    1 => "util.py".to_owned(),
                    _ => format!("mod_{dir}_{f}.py"),
                };
                index.insert(&format!("acme/repo{repo}"), &format!("pkg{}/sub{dir}/{name}", dir % 7));
            }
        }
    }
    assert_eq!(index.len(), 200_000);
    let options = MapOptions::default();
    let m = index.map_frame(&file("/srv/app/pkg3/sub10/mod_10_42.py"), Language::Python, &options);
    assert_eq!(unmapped(&m).as_str(), "AMBIGUOUS"); // the same path in all four repositories
    let scoped = MapOptions {
        scope: Some(MappingScope { repository: "acme/repo2".into(), path_prefix: PathPrefix::root() }),
        not_synced: vec![],
    };
    let m = index.map_frame(&file("/srv/app/pkg3/sub10/mod_10_42.py"), Language::Python, &scoped);
    assert_eq!(mapped(&m), ("acme/repo2", "pkg3/sub10/mod_10_42.py", 3));
    let m = index.map_frame(&file("/srv/app/pkg3/sub10/__init__.py"), Language::Python, &scoped);
    assert_eq!(mapped(&m), ("acme/repo2", "pkg3/sub10/__init__.py", 3));
    let m = index.map_frame(&file("/srv/app/util.py"), Language::Python, &scoped);
    let Unmapped::Ambiguous { total, candidates } = unmapped(&m) else { panic!() };
    assert_eq!((*total, candidates.len()), (500, 3));
    assert!(unmapped(&m).message().contains("and 497 more"));
}
