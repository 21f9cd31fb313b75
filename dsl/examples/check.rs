fn main() {
    for path in std::env::args().skip(1) {
        let loaded = dsl::load_file(std::path::Path::new(&path)).unwrap();
        print!(
            "{}",
            dsl::render::render_all(&loaded.diagnostics, &loaded.sources, false)
        );
        println!("{} pipelines", loaded.pipelines.len());
    }
}
