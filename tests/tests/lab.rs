//! A lab under QEMU (TCG): three old machines boot the PE over the network from one nginx on
//! 127.0.0.1 (Debian's nginx-light, started by the test with its own config and port) and each
//! migrates itself unattended, then boots its new OS, which restores. Two boot BIOS through
//! iPXE, with a preset of their own chosen by MAC; the third boots UEFI with Secure Boot
//! enforced (Debian's shim → signed network GRUB → signed kernel, which that GRUB loads over
//! TFTP: it has no http module) and takes the default preset.
//! A collector (test code) receives every machine's events; nginx is stopped in the middle of
//! the image transfers and started again, and the transfers resume.
//!
//! It prints the wall time and, from nginx's access log, the bytes sent to each machine.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use inplace_tests::collector::{free_port, ordered, schema_errors, Collector};
use inplace_tests::e2e;
use inplace_tests::nginx::{Access, Nginx};
use inplace_tests::qemu::{Boot, Controller, Firmware, Vm};

struct Seat {
    name: &'static str,
    mac: &'static str,
    firmware: Firmware,
    /// Served a preset of its own (by MAC), else the default.
    own_preset: bool,
}

const SEATS: [Seat; 3] = [
    Seat { name: "a", mac: "52:54:00:00:10:0a", firmware: Firmware::Bios, own_preset: true },
    Seat { name: "b", mac: "52:54:00:00:10:0b", firmware: Firmware::Bios, own_preset: true },
    Seat { name: "c", mac: "52:54:00:00:10:0c", firmware: Firmware::UefiSecureBoot, own_preset: false },
];

fn preset(seat: &str, image_url: &str, digest: &str, report: &str) -> String {
    let extra = format!("\n[report]\nurl = \"{report}\"\ninterval = 5\n");
    e2e::preset(&format!("lab seat {seat}"), &format!("{image_url}?seat={seat}"), digest, "delete", &extra)
}

/// One seat's run: the PE over PXE until it powers off (with `cut` called once its image
/// download is under way), then the new OS until the collector has its first-boot report.
/// Returns the PE's serial log and the seconds of each part.
fn seat_run(seat: &Seat, disk: &Path, manifest: &inplace_tests::debian::Manifest, collector: &Collector, pxe: &Path, http: &str, cut: Option<&dyn Fn()>) -> (String, f64, f64) {
    let t0 = Instant::now();
    let pe = Vm::new("").booting(pxe_boot(seat.firmware, pxe, http), seat.firmware).with_mac(seat.mac).disk(disk, Controller::VirtioBlk, 512, &format!("LAB-{}", seat.name));
    let mut s = pe.start();
    if let Some(cut) = cut {
        s.wait_for("downloading", Duration::from_secs(20 * 60)).unwrap();
        s.wait_for("MiB/s", Duration::from_secs(120)).unwrap();
        cut();
    }
    let (which, _) = s.wait_for_any(&["handed-off", "inplace: FATAL"], Duration::from_secs(25 * 60)).unwrap();
    assert_eq!(which, 0, "seat {}: the PE failed:\n{}", seat.name, s.tail(6000));
    let serial = s.wait_exit(Duration::from_secs(180)).unwrap().serial;
    let pe_secs = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let done = |envs: &[serde_json::Value]| envs.iter().any(|e| e["origin"] == "first-boot" && e["kind"] == "done" && e["machine"]["mac"] == seat.mac);
    e2e::boot_and_log_in_then(disk, manifest, || {
        assert!(collector.wait_until(Duration::from_secs(300), done), "seat {}: no first-boot report", seat.name);
    });
    (serial, pe_secs, t1.elapsed().as_secs_f64())
}

/// How a seat boots: BIOS through the NIC's iPXE, which loads `boot.ipxe` and the PE from
/// nginx; UEFI through the firmware's PXE client and TFTP (QEMU's user network serving the
/// tree, as dnsmasq would).
fn pxe_boot(firmware: Firmware, tree: &Path, http: &str) -> Boot {
    match firmware {
        Firmware::Bios => Boot::Network { tftp: None, bootfile: format!("{http}/boot.ipxe") },
        _ => Boot::Network { tftp: Some(tree.to_path_buf()), bootfile: "bootx64.efi".into() },
    }
}

/// `scripts/build-pxe` into `tree`, as docs/lab.md builds it: the PE from `http`, a preset
/// per machine by MAC falling back to the default one.
fn build_pxe(tree: &Path, http: &str) {
    let out = Command::new(inplace_tests::workspace().join("scripts/build-pxe"))
        .args(["--out", tree.to_str().unwrap(), "--http-base", http])
        .args(["--preset-url", &format!("{http}/presets/${{mac:hexhyp}}.toml"), "--preset-default", &format!("{http}/presets/default.toml")])
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-pxe: {}", String::from_utf8_lossy(&out.stderr));
}

/// MAC as iPXE's `${mac:hexhyp}` spells it.
fn hexhyp(mac: &str) -> String {
    mac.replace(':', "-")
}

/// The start of a `Range: bytes=START-…` request.
fn range_start(a: &Access) -> Option<u64> {
    a.range.as_deref()?.strip_prefix("bytes=")?.split('-').next()?.parse().ok()
}

/// The image bytes nginx sent for `seat` (its preset names the image with `?seat=`), and the
/// requests. nginx logs a request when it ends, so a transfer cut by its stop has no line: the
/// download that resumed after it says where the cut one had got to (it began at byte 0).
fn image_bytes(log: &[Access], seat: &str, image_len: u64) -> (u64, Vec<Access>) {
    let marker = format!("seat={seat}");
    let mine: Vec<Access> = log.iter().filter(|a| a.path.ends_with("new-os.inplace") && a.query.as_deref() == Some(&marker)).cloned().collect();
    let logged: u64 = mine.iter().map(|a| a.body_bytes).sum();
    // The download: requests to the file's end, past its header, before its index.
    let downloads = mine.iter().filter(|a| a.range.as_deref().is_some_and(|r| r.ends_with(&format!("-{}", image_len - 1))) && a.body_bytes > (1 << 20));
    let cut_short = downloads.filter_map(range_start).min().unwrap_or(0);
    (logged + cut_short, mine)
}

#[test]
fn three_machines_boot_from_one_nginx_migrate_and_report_everything() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (image, digest) = e2e::new_os_image();
    let image_len = std::fs::metadata(&image).unwrap().len();

    // The server's tree: the PXE files, the presets, the image.
    let root = dir.path().join("srv");
    let base = root.join("inplace");
    std::fs::create_dir_all(base.join("presets")).unwrap();
    std::fs::create_dir_all(base.join("images")).unwrap();
    std::fs::copy(&image, base.join("images/new-os.inplace")).unwrap();
    let port = free_port();
    let http = format!("http://10.0.2.2:{port}/inplace");
    let collector = Collector::start();
    let report = format!("http://10.0.2.2:{}/events", collector.port);
    let image_url = format!("{http}/images/new-os.inplace");
    for seat in &SEATS {
        let name = if seat.own_preset { format!("{}.toml", hexhyp(seat.mac)) } else { "default.toml".into() };
        std::fs::write(base.join("presets").join(name), preset(seat.name, &image_url, &digest, &report)).unwrap();
    }
    build_pxe(&base, &http);
    // Images at 16 MB/s a request, so that a transfer lasts long enough to be cut.
    let nginx = std::sync::Arc::new(std::sync::Mutex::new(Nginx::start_limited(&root, port, Some("16m"))));

    // Three old machines, started a few seconds apart.
    let machines: Vec<_> = SEATS
        .iter()
        .map(|s| {
            let d = dir.path().join(s.name);
            std::fs::create_dir_all(&d).unwrap();
            let (disk, manifest, _) = e2e::old_machine_copy(&d, false);
            (disk, manifest)
        })
        .collect();
    let cut_at = std::sync::Mutex::new(None::<usize>);
    let results: Vec<(String, f64, f64)> = std::thread::scope(|sc| {
        let handles: Vec<_> = SEATS
            .iter()
            .zip(&machines)
            .enumerate()
            .map(|(i, (seat, (disk, manifest)))| {
                let (nginx, collector, cut_at, base, http) = (nginx.clone(), &collector, &cut_at, &base, &http);
                sc.spawn(move || {
                    std::thread::sleep(Duration::from_secs(8 * i as u64));
                    // Seat a's image transfer is cut: nginx stops as its download begins, and
                    // comes back 4 s later.
                    let cut = move || {
                        let mut n = nginx.lock().unwrap();
                        n.stop();
                        std::thread::sleep(Duration::from_secs(4));
                        n.restart();
                        *cut_at.lock().unwrap() = Some(n.access_log().len());
                    };
                    seat_run(seat, disk, manifest, collector, base, http, (i == 0).then_some(&cut as &dyn Fn()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();

    // Every machine: migrated, restored, reported.
    let log = nginx.lock().unwrap().access_log();
    let pe_files: u64 = log.iter().filter(|a| a.path.ends_with("/vmlinuz") || a.path.ends_with("/initramfs.img")).map(|a| a.body_bytes).sum();
    let pe_size = std::fs::metadata(base.join("vmlinuz")).unwrap().len() + std::fs::metadata(base.join("initramfs.img")).unwrap().len();
    eprintln!("lab: 3 machines in {wall:.0} s wall; image {image_len} bytes, PE {pe_size} bytes; nginx sent {pe_files} bytes of PE in all");
    for ((seat, (disk, manifest)), (serial, pe_secs, boot_secs)) in SEATS.iter().zip(&machines).zip(&results) {
        for step in ["== carve", "== capture", "== stage", "== lay-down", "== hand-off"] {
            assert!(serial.contains(step), "seat {}: no {step}:\n{serial}", seat.name);
        }
        assert!(serial.contains("laying down the copy staged in the store"), "seat {}: the lay-down did not read the staged copy:\n{serial}", seat.name);
        let fw = if seat.firmware == Firmware::UefiSecureBoot { "secure-boot on" } else { "firmware bios" };
        assert!(serial.contains(fw), "seat {}: not booted as expected ({fw}):\n{serial}", seat.name);
        for l in serial.lines().filter(|l| ["retry", "resuming", "download", "stag", "== ", "stream", "image"].iter().any(|k| l.contains(k))) {
            eprintln!("  seat {}: {}", seat.name, l.trim());
        }
        let bad = e2e::check_done(disk, manifest);
        assert!(bad.is_empty(), "seat {}: {} problems:\n  {}", seat.name, bad.len(), bad.join("\n  "));
        let job_id = e2e::journal_copy(disk).unwrap()["job_id"].as_str().unwrap().to_string();
        let (envs, missing) = ordered(&collector.envelopes(), &job_id);
        assert!(missing.is_empty(), "seat {}: sequence numbers missing: {missing:?}", seat.name);
        assert_eq!(schema_errors(&envs), Vec::<String>::new());
        let begun: Vec<&str> = envs.iter().filter(|e| e["event"]["event"] == "step").map(|e| e["event"]["step"].as_str().unwrap()).collect();
        assert_eq!(begun, ["plan", "carve", "capture", "verify", "stage", "lay-down", "hand-off", "restore", "cleanup"], "seat {}", seat.name);
        assert!(envs.iter().any(|e| e["kind"] == "start"), "seat {}", seat.name);
        assert!(envs.iter().any(|e| e["kind"] == "done" && e["origin"] == "pe"), "seat {}", seat.name);
        let last = envs.last().unwrap();
        assert_eq!((last["kind"].as_str(), last["origin"].as_str()), (Some("done"), Some("first-boot")), "seat {}", seat.name);
        assert_eq!(last["event"]["report"]["restore"]["totals"]["failed"], 0);
        assert!(envs.iter().all(|e| e["machine"]["mac"] == seat.mac), "seat {}: another machine's identity", seat.name);
        // The image came with Range requests, about once.
        let (bytes, requests) = image_bytes(&log, seat.name, image_len);
        for a in &requests {
            eprintln!("  seat {}: {} {:?} {} bytes in {:.1} s", seat.name, a.status, a.range, a.body_bytes, a.request_time);
        }
        assert!(!requests.is_empty() && requests.iter().all(|a| a.range.is_some() && a.status == 206), "seat {}: {requests:?}", seat.name);
        assert!(bytes >= image_len && bytes < image_len + image_len / 5, "seat {}: {bytes} bytes of a {image_len}-byte image", seat.name);
        let report_bytes: usize = envs.iter().map(|e| e.to_string().len()).sum();
        eprintln!(
            "seat {} ({:?}): PE {pe_secs:.0} s, first boot {boot_secs:.0} s; sent by nginx: image {bytes} bytes in {} requests, PE {} bytes; collector: {} envelopes, {report_bytes} bytes of JSON",
            seat.name,
            seat.firmware,
            requests.len(),
            if seat.firmware == Firmware::Bios { pe_size } else { 0 },
            envs.len()
        );
    }
    // The BIOS machines took the PE from nginx (the UEFI one over TFTP: its GRUB has no HTTP).
    assert_eq!(pe_files, 2 * pe_size, "{pe_files} bytes of PE for 2 machines of {pe_size}");
    // The cut: seat a's transfer went on after nginx came back, from where it was (a Range past
    // the start), not from the beginning.
    let k = cut_at.lock().unwrap().expect("the cut happened");
    let after: Vec<&Access> = log[k..].iter().filter(|a| a.path.ends_with("new-os.inplace") && a.query.as_deref() == Some("seat=a")).collect();
    let first = after.first().unwrap_or_else(|| panic!("seat a fetched nothing after the cut: {:?}", &log[k..]));
    let start = range_start(first).unwrap_or(0);
    assert!(start > 0, "seat a started over after the cut: {first:?}");
    assert!(results[0].0.contains("retry 1 of"), "seat a did not retry:\n{}", results[0].0);
}
