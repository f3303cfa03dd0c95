//! What cleanup asks of the machine: its volumes, the first bytes of one, its system drive,
//! and running diskpart or schtasks. `platform` has the Windows one; `DirMachine` is the
//! stand-in the tests use (on Linux and under Wine).

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// A volume with a drive letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub letter: char,
    pub label: String,
    /// The filesystem's name as Windows gives it (`FAT32`, `NTFS`, …).
    pub fs: String,
}

/// A program cleanup runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Diskpart,
    Schtasks,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Diskpart => "diskpart",
            Tool::Schtasks => "schtasks",
        }
    }
}

/// How a program ended: its exit code (`None`: killed) and its stdout then stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub code: Option<i32>,
    pub output: String,
}

/// The machine as cleanup sees it.
pub trait Machine {
    /// The volumes that have a drive letter (with their label and filesystem; volumes whose
    /// information cannot be read, such as an empty card reader, are left out).
    fn volumes(&self) -> io::Result<Vec<Volume>>;
    /// The first `len` bytes of a volume, read raw (as `\\.\X:`).
    fn read_head(&self, letter: char, len: usize) -> io::Result<Vec<u8>>;
    /// The root folder of a volume (`E:\`).
    fn root(&self, letter: char) -> PathBuf;
    /// The drive Windows runs from (`%SystemDrive%`).
    fn system_drive(&self) -> io::Result<char>;
    /// Runs diskpart or schtasks with `args` and waits for it.
    fn run(&self, tool: Tool, args: &[OsString]) -> io::Result<Ran>;
}

/// A machine described by a folder, for tests:
///
/// ```text
/// DIR/volumes/<L>/label, fs, head   a volume: its label, filesystem and first bytes
/// DIR/volumes/<L>/files/            its files
/// DIR/system-drive                  the system drive's letter (C when absent)
/// DIR/diskpart.fail-at              a script line at which diskpart fails (exit 1)
/// DIR/schtasks.exit                 schtasks' exit code (0 when absent)
/// DIR/commands.log                  each command run, with a diskpart script's lines
/// ```
///
/// Its diskpart follows the script: `delete volume` removes the selected volume's folder,
/// `format` makes it an empty NTFS volume labelled `Data`; it stops at the first failing line.
pub struct DirMachine {
    pub dir: PathBuf,
}

impl DirMachine {
    fn volume_dir(&self, letter: char) -> PathBuf {
        self.dir.join("volumes").join(letter.to_ascii_uppercase().to_string())
    }

    /// Adds a volume (for tests).
    pub fn add_volume(&self, letter: char, label: &str, fs: &str, head: &[u8]) -> io::Result<()> {
        let d = self.volume_dir(letter);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join("label"), label)?;
        std::fs::write(d.join("fs"), fs)?;
        std::fs::write(d.join("head"), head)
    }

    fn log(&self, line: &str) -> io::Result<()> {
        use io::Write;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("commands.log"))?;
        writeln!(f, "{line}")
    }

    fn diskpart(&self, script: &Path) -> io::Result<Ran> {
        let text = std::fs::read_to_string(script)?;
        let fail_at = std::fs::read_to_string(self.dir.join("diskpart.fail-at")).ok().map(|s| s.trim().to_string());
        let mut selected: Option<char> = None;
        let mut output = String::from("stand-in diskpart\n");
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            self.log(&format!("  {line}"))?;
            if fail_at.as_deref() == Some(line) {
                output.push_str(&format!("{line}: Virtual Disk Service error (stand-in)\n"));
                return Ok(Ran { code: Some(1), output });
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["select", "volume", v] => selected = v.chars().next(),
                ["delete", "volume"] => std::fs::remove_dir_all(self.volume_dir(selected.ok_or_else(|| io::Error::other("no volume selected"))?))?,
                ["format", ..] => {
                    let letter = selected.ok_or_else(|| io::Error::other("no volume selected"))?;
                    self.add_volume(letter, "Data", "NTFS", &vec![0u8; crate::cleanup::locator::HEAD_LEN])?;
                }
                _ => {}
            }
            output.push_str(&format!("{line}: done\n"));
        }
        Ok(Ran { code: Some(0), output })
    }
}

impl Machine for DirMachine {
    fn volumes(&self) -> io::Result<Vec<Volume>> {
        let mut out = Vec::new();
        let dir = self.dir.join("volumes");
        if !dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let Some(letter) = e.file_name().to_string_lossy().chars().next() else { continue };
            let read = |f: &str| std::fs::read_to_string(e.path().join(f)).map(|s| s.trim().to_string());
            out.push(Volume { letter, label: read("label")?, fs: read("fs")? });
        }
        out.sort_by_key(|v| v.letter);
        Ok(out)
    }

    fn read_head(&self, letter: char, len: usize) -> io::Result<Vec<u8>> {
        let mut head = std::fs::read(self.volume_dir(letter).join("head"))?;
        head.truncate(len);
        Ok(head)
    }

    fn root(&self, letter: char) -> PathBuf {
        self.volume_dir(letter).join("files")
    }

    fn system_drive(&self) -> io::Result<char> {
        Ok(std::fs::read_to_string(self.dir.join("system-drive")).ok().and_then(|s| s.trim().chars().next()).unwrap_or('C'))
    }

    fn run(&self, tool: Tool, args: &[OsString]) -> io::Result<Ran> {
        let line: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        self.log(&format!("{} {}", tool.name(), line.join(" ")))?;
        match tool {
            Tool::Diskpart => match args {
                [flag, script] if flag == "/s" => self.diskpart(Path::new(script)),
                _ => Err(io::Error::other("the stand-in diskpart takes /s SCRIPT")),
            },
            Tool::Schtasks => {
                let code = std::fs::read_to_string(self.dir.join("schtasks.exit")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                Ok(Ran { code: Some(code), output: format!("stand-in schtasks: exit {code}\n") })
            }
        }
    }
}
