//! Kernel modules: the index depmod wrote, and a loader that matches device modaliases against
//! it (coldplug), honouring dependencies and soft dependencies.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// `modules.dep`, `modules.alias`, `modules.softdep` and `modules.builtin`, parsed.
#[derive(Debug, Default)]
pub struct ModuleIndex {
    dir: PathBuf,
    files: HashMap<String, String>,
    deps: HashMap<String, Vec<String>>,
    pre: HashMap<String, Vec<String>>,
    post: HashMap<String, Vec<String>>,
    aliases: Vec<Alias>,
    builtin: HashSet<String>,
}

#[derive(Debug)]
struct Alias {
    /// Literal text before the first wildcard, to skip most patterns cheaply.
    prefix: String,
    pattern: glob::Pattern,
    module: String,
}

/// Module names compare with `-` and `_` as the same character.
pub fn module_name(s: &str) -> String {
    let base = s.rsplit('/').next().unwrap_or(s);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

impl ModuleIndex {
    /// Reads the index from `/lib/modules/<release>`.
    pub fn open(dir: &Path) -> anyhow::Result<ModuleIndex> {
        let read = |name: &str| -> anyhow::Result<String> {
            let p = dir.join(name);
            match std::fs::read_to_string(&p) {
                Ok(s) => Ok(s),
                Err(e) if e.kind() == io::ErrorKind::NotFound && name != "modules.dep" => Ok(String::new()),
                Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
            }
        };
        let mut index = ModuleIndex::parse(
            &read("modules.dep")?,
            &read("modules.alias")?,
            &read("modules.softdep")?,
            &read("modules.builtin")?,
        );
        index.dir = dir.to_path_buf();
        Ok(index)
    }

    /// Parses the depmod files' contents (pure, for tests).
    pub fn parse(dep: &str, alias: &str, softdep: &str, builtin: &str) -> ModuleIndex {
        let mut index = ModuleIndex::default();
        for line in dep.lines() {
            let Some((file, rest)) = line.split_once(':') else { continue };
            let name = module_name(file);
            index.deps.insert(name.clone(), rest.split_whitespace().map(module_name).collect());
            index.files.insert(name, file.to_string());
        }
        for line in alias.lines() {
            let mut w = line.split_whitespace();
            let (Some("alias"), Some(pat), Some(module)) = (w.next(), w.next(), w.next()) else { continue };
            let Ok(pattern) = glob::Pattern::new(pat) else { continue };
            let prefix = pat.split(['*', '?', '[']).next().unwrap_or("").to_string();
            index.aliases.push(Alias { prefix, pattern, module: module_name(module) });
        }
        for line in softdep.lines() {
            let mut w = line.split_whitespace();
            let (Some("softdep"), Some(module)) = (w.next(), w.next()) else { continue };
            let module = module_name(module);
            let mut post = false;
            for word in w {
                match word {
                    "pre:" => post = false,
                    "post:" => post = true,
                    m => {
                        let list = if post { &mut index.post } else { &mut index.pre };
                        // Kept as written: a soft dependency may be an alias (`crypto-crc32c`).
                        list.entry(module.clone()).or_default().push(m.to_string());
                    }
                }
            }
        }
        index.builtin = builtin.lines().filter(|l| !l.trim().is_empty()).map(module_name).collect();
        index
    }

    /// Modules whose aliases match a device's modalias, in index order, without repeats.
    pub fn modules_for(&self, modalias: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for a in &self.aliases {
            if modalias.starts_with(&a.prefix) && a.pattern.matches(modalias) && !out.contains(&a.module.as_str()) {
                out.push(&a.module);
            }
        }
        out
    }

    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&module_name(name))
    }
}

/// Where modules go: the kernel in the PE, a recorder in tests.
pub trait ModuleSink {
    /// Inserts the module file; an already loaded module is success.
    fn insert(&mut self, path: &Path) -> io::Result<()>;
}

/// Inserts modules into the running kernel with `finit_module`.
pub struct Kernel;

/// `MODULE_INIT_COMPRESSED_FILE`: the kernel decompresses the file itself.
const MODULE_INIT_COMPRESSED_FILE: i32 = 4;

impl ModuleSink for Kernel {
    fn insert(&mut self, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        let compressed = matches!(path.extension().and_then(|e| e.to_str()), Some("xz" | "zst" | "gz"));
        let flags = if compressed { MODULE_INIT_COMPRESSED_FILE } else { 0 };
        match rustix::system::finit_module(&file, c"", flags) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Loads modules once each, dependencies first.
pub struct Loader<S: ModuleSink> {
    pub index: ModuleIndex,
    sink: S,
    loaded: HashSet<String>,
    /// Modules that failed, with the reason; they are not tried again.
    pub failed: Vec<(String, String)>,
    /// Modules this loader inserted, in order.
    pub inserted: Vec<String>,
    seen_modaliases: HashSet<String>,
}

impl<S: ModuleSink> Loader<S> {
    /// `already_loaded` is the content of `/proc/modules` (may be empty).
    pub fn new(index: ModuleIndex, sink: S, already_loaded: &str) -> Self {
        let loaded = already_loaded.lines().filter_map(|l| l.split_whitespace().next()).map(module_name).collect();
        Loader { index, sink, loaded, failed: Vec::new(), inserted: Vec::new(), seen_modaliases: HashSet::new() }
    }

    /// Loads `name` with its soft and hard dependencies. Returns how many modules were inserted.
    pub fn load(&mut self, name: &str) -> usize {
        let name = module_name(name);
        if self.loaded.contains(&name) || self.index.is_builtin(&name) || self.failed.iter().any(|(n, _)| *n == name) {
            return 0;
        }
        let Some(file) = self.index.files.get(&name).cloned() else {
            self.failed.push((name, "not in modules.dep".into()));
            return 0;
        };
        // Mark first, so dependency cycles end.
        self.loaded.insert(name.clone());
        let mut count = 0;
        let pre = self.index.pre.get(&name).cloned().unwrap_or_default();
        let deps = self.index.deps.get(&name).cloned().unwrap_or_default();
        // A soft dependency may be an alias (ext4's `crypto-crc32c`): every module it names.
        let pre: Vec<String> = pre
            .into_iter()
            .flat_map(|m| match self.index.files.contains_key(&module_name(&m)) {
                true => vec![module_name(&m)],
                false => self.index.modules_for(&m).iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        for dep in pre.iter().chain(deps.iter()) {
            count += self.load(dep);
        }
        match self.sink.insert(&self.index.dir.join(&file)) {
            Ok(()) => {
                count += 1;
                self.inserted.push(name.clone());
            }
            Err(e) => {
                self.loaded.remove(&name);
                self.failed.push((name.clone(), e.to_string()));
                return count;
            }
        }
        for post in self.index.post.get(&name).cloned().unwrap_or_default() {
            if self.index.files.contains_key(&module_name(&post)) {
                count += self.load(&post);
            }
        }
        count
    }

    /// Loads the module that provides filesystem `fstype` (alias `fs-<type>`), if any.
    pub fn load_fs(&mut self, fstype: &str) -> usize {
        let names: Vec<String> = self.index.modules_for(&format!("fs-{fstype}")).iter().map(|s| s.to_string()).collect();
        names.iter().map(|n| self.load(n)).sum()
    }

    /// One coldplug pass: loads the modules for every modalias not seen before.
    pub fn coldplug_pass(&mut self, modaliases: &[String]) -> usize {
        modaliases.iter().map(|m| self.coldplug_device(m, &|| false)).sum()
    }

    /// Loads the modules for a device's modalias, unless it was seen before, and stops once
    /// `bound` says a driver took the device: one that matches too (`ata_generic` beside
    /// `ata_piix`) would only be decompressed and initialised for nothing.
    pub fn coldplug_device(&mut self, modalias: &str, bound: &dyn Fn() -> bool) -> usize {
        if !self.seen_modaliases.insert(modalias.to_string()) || bound() {
            return 0;
        }
        let names: Vec<String> = self.index.modules_for(modalias).iter().map(|s| s.to_string()).collect();
        let mut count = 0;
        for n in names {
            count += self.load(&n);
            if bound() {
                break;
            }
        }
        count
    }

    pub fn loaded_count(&self) -> usize {
        self.loaded.len()
    }

    /// Whether a module this loader loaded (or found loaded) matches `modalias`: the device is
    /// then expected to bind.
    pub fn matches_loaded(&self, modalias: &str) -> bool {
        self.index.modules_for(modalias).iter().any(|m| self.loaded.contains(*m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Recorder(Vec<String>, Option<String>);
    impl ModuleSink for &mut Recorder {
        fn insert(&mut self, path: &Path) -> io::Result<()> {
            let name = module_name(&path.to_string_lossy());
            if self.1.as_deref() == Some(name.as_str()) {
                return Err(io::Error::other("Exec format error"));
            }
            self.0.push(name);
            Ok(())
        }
    }

    const DEP: &str = "kernel/drivers/ata/ahci.ko.xz: kernel/drivers/ata/libahci.ko.xz kernel/drivers/ata/libata.ko.xz\n\
        kernel/drivers/ata/libahci.ko.xz: kernel/drivers/ata/libata.ko.xz\n\
        kernel/drivers/ata/libata.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz\n\
        kernel/drivers/scsi/scsi_mod.ko.xz:\n\
        kernel/drivers/scsi/sd_mod.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz\n\
        kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz\n\
        kernel/fs/jbd2/jbd2.ko.xz:\n\
        kernel/crypto/crc32c_generic.ko.xz:\n";
    const ALIAS: &str = "alias pci:v*d*sv*sd*bc01sc06i01* ahci\n\
        alias scsi:t-0x00* sd_mod\n\
        alias fs-ext4 ext4\n\
        alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci\n";
    const SOFTDEP: &str = "softdep ext4 pre: crc32c post: missing_mod\n";

    #[test]
    fn matches_modalias_and_loads_dependencies_first() {
        let index = ModuleIndex::parse(DEP, ALIAS, SOFTDEP, "kernel/drivers/tty/serial/8250.ko\n");
        assert_eq!(index.modules_for("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"), vec!["ahci"]);
        let mut rec = Recorder::default();
        let mut loader = Loader::new(index, &mut rec, "");
        let n = loader.coldplug_pass(&["pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01".into(), "scsi:t-0x00".into()]);
        assert_eq!(n, 5);
        // The same modalias again loads nothing.
        assert_eq!(loader.coldplug_pass(&["scsi:t-0x00".into()]), 0);
        assert_eq!(loader.inserted, ["scsi_mod", "libata", "libahci", "ahci", "sd_mod"]);
        drop(loader);
        assert_eq!(rec.0, ["scsi_mod", "libata", "libahci", "ahci", "sd_mod"]);
    }

    #[test]
    fn filesystem_on_demand_and_builtin_and_loaded_are_skipped() {
        let index = ModuleIndex::parse(DEP, ALIAS, SOFTDEP, "kernel/crypto/crc32c_generic.ko\n");
        let mut rec = Recorder::default();
        let mut loader = Loader::new(index, &mut rec, "jbd2 151552 1 ext4, Live 0x0\n");
        assert!(loader.index.is_builtin("crc32c-generic"));
        // crc32c is neither a file nor builtin by that name: the soft dependency is optional.
        assert_eq!(loader.load_fs("ext4"), 1);
        assert_eq!(loader.load_fs("ntfs3"), 0);
        drop(loader);
        assert_eq!(rec.0, ["ext4"]);
    }

    #[test]
    fn a_soft_dependency_named_by_alias_loads_its_modules_first() {
        let alias = format!("{ALIAS}alias crypto-crc32c crc32c_generic\nalias crc32c crc32c_generic\n");
        let index = ModuleIndex::parse(DEP, &alias, "softdep ext4 pre: crypto-crc32c\n", "");
        let mut rec = Recorder::default();
        let mut loader = Loader::new(index, &mut rec, "");
        assert_eq!(loader.load_fs("ext4"), 3);
        drop(loader);
        assert_eq!(rec.0, ["crc32c_generic", "jbd2", "ext4"]);
    }

    #[test]
    fn a_bound_device_needs_no_further_module() {
        let alias = format!("{ALIAS}alias pci:v*d*sv*sd*bc01sc06i01* ata_generic\n");
        let dep = format!("{DEP}kernel/drivers/ata/ata_generic.ko.xz: kernel/drivers/ata/libata.ko.xz\n");
        let index = ModuleIndex::parse(&dep, &alias, "", "");
        let mut rec = Recorder::default();
        let mut loader = Loader::new(index, &mut rec, "");
        let bound = std::cell::Cell::new(false);
        let n = loader.coldplug_device("pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", &|| {
            let was = bound.get();
            bound.set(true);
            was
        });
        assert_eq!(loader.inserted, ["scsi_mod", "libata", "libahci", "ahci"], "ata_generic was not needed");
        assert_eq!(n, 4);
        // A device already bound loads nothing.
        assert_eq!(loader.coldplug_device("scsi:t-0x00", &|| true), 0);
    }

    #[test]
    fn a_failing_module_is_recorded_and_not_retried() {
        let index = ModuleIndex::parse(DEP, ALIAS, "", "");
        let mut rec = Recorder(Vec::new(), Some("libata".into()));
        let mut loader = Loader::new(index, &mut rec, "");
        loader.load("ahci");
        assert!(loader.failed.iter().any(|(n, why)| n == "libata" && why.contains("Exec format")));
        assert_eq!(loader.load("libata"), 0);
    }
}
