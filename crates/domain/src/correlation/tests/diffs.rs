use crate::correlation::{FileDiff, LineRange, parse_hunk_ranges, split_unified_diff};

const BITBUCKET_DIFF: &str = "diff --git a/checkout/cart.py b/checkout/cart.py
index 3b18e51..a9c1f2d 100644
--- a/checkout/cart.py
+++ b/checkout/cart.py
@@ -36,7 +38,10 @@ class Cart:
     def total(self):
-        rate = RATES[self.currency]
+        rate = rates.get(self.currency)
+        if rate is None:
+            raise PricingError(self.currency)
--- not a header, a removed line that starts with dashes
+++ not a header either
@@ -120,4 +125,0 @@ class Cart:
-    def legacy(self):
-        pass
\\ No newline at end of file
diff --git a/old/rates.py b/checkout/rates.py
similarity index 88%
rename from old/rates.py
rename to checkout/rates.py
index 1..2 100644
--- a/old/rates.py
+++ b/checkout/rates.py
@@ -1,3 +1,4 @@
+import decimal
diff --git a/static/logo.png b/static/logo.png
index 1..2 100644
Binary files a/static/logo.png and b/static/logo.png differ
diff --git a/checkout/new_file.py b/checkout/new_file.py
new file mode 100644
--- /dev/null
+++ b/checkout/new_file.py
@@ -0,0 +1,12 @@
+x = 1
diff --git a/checkout/gone.py b/checkout/gone.py
deleted file mode 100644
--- a/checkout/gone.py
+++ /dev/null
@@ -1,9 +0,0 @@
-y = 2
diff --git a/docs/pure rename.md b/docs/renamed file.md
similarity index 100%
rename from docs/pure rename.md
rename to docs/renamed file.md
";

#[test]
fn splits_a_git_diff_per_file() {
    let files = split_unified_diff(BITBUCKET_DIFF);
    let summary: Vec<(Option<&str>, Option<&str>, String, bool)> = files
        .iter()
        .map(|f: &FileDiff| (f.old_path.as_deref(), f.new_path.as_deref(), LineRange::encode_list(&f.ranges), f.binary))
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("checkout/cart.py"), Some("checkout/cart.py"), "38-47,125".into(), false),
            (Some("old/rates.py"), Some("checkout/rates.py"), "1-4".into(), false),
            (Some("static/logo.png"), Some("static/logo.png"), String::new(), true),
            (None, Some("checkout/new_file.py"), "1-12".into(), false),
            (Some("checkout/gone.py"), None, "1".into(), false),
            (Some("docs/pure rename.md"), Some("docs/renamed file.md"), String::new(), false),
        ]
    );
    assert!(files[1].is_rename() && files[5].is_rename() && !files[0].is_rename());
}

#[test]
fn bare_hunks_without_git_headers() {
    let diff = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n--- a/y.py\n+++ b/y.py\n@@ -5,2 +5,3 @@\n+c\n";
    let files = split_unified_diff(diff);
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].new_path.as_deref(), Some("y.py"));
    assert_eq!(files[1].ranges, vec![LineRange::new(5, 7)]);
}

#[test]
fn a_single_file_patch_as_github_gives_it() {
    let patch = "@@ -10,6 +10,8 @@ def total(self):\n ctx\n-old\n+new\n+new\n\\ No newline at end of file\n@@ -50,3 +52,0 @@\n-gone\n";
    assert_eq!(parse_hunk_ranges(patch), vec![LineRange::new(10, 17), LineRange::new(52, 52)]);
    assert_eq!(parse_hunk_ranges(""), vec![]);
}

#[test]
fn big_and_hostile_diffs_stay_bounded() {
    // Ten megabytes: one pass, capped output.
    let mut diff = String::with_capacity(10 << 20);
    let mut n = 0u32;
    while diff.len() < 10 << 20 {
        n += 1;
        diff.push_str(&format!(
            "diff --git a/f{n}.py b/f{n}.py\n--- a/f{n}.py\n+++ b/f{n}.py\n@@ -1 +1,2 @@\n+x\n+y\n"
        ));
    }
    let files = split_unified_diff(&diff);
    assert_eq!(files.len(), crate::correlation::MAX_DIFF_FILES);
    let one_file: String = (0..400_000u32).map(|i| format!("@@ -{i} +{} @@\n", i * 2 + 1)).collect();
    let ranges = parse_hunk_ranges(&one_file);
    assert_eq!(ranges.len(), crate::correlation::MAX_RANGES);
    for junk in ["@@", "@@ -", "@@ - +", "@@ -1 +x @@", "diff --git", "diff --git a/", "--- ", "+++ ", "rename to "] {
        let _ = split_unified_diff(junk);
        let _ = parse_hunk_ranges(junk);
    }
}
