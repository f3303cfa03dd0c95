//! The proportional partition map both front ends draw: which columns of a bar each partition
//! (or free gap) takes.

use crate::inventory::Disk;

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Index into `disk.partitions`, or `None` for unallocated space.
    pub partition: Option<usize>,
    pub width: usize,
    pub size_bytes: u64,
}

/// Splits `width` columns among the disk's partitions and the gaps between them, in disk order.
/// Every partition gets at least one column; gaps under 1% of the disk are not drawn.
pub fn segments(disk: &Disk, width: usize) -> Vec<Segment> {
    if disk.size_bytes == 0 || width == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..disk.partitions.len()).collect();
    order.sort_by_key(|&i| disk.partitions[i].start_bytes);
    let mut raw: Vec<(Option<usize>, u64)> = Vec::new();
    let mut pos = 0u64;
    for i in order {
        let p = &disk.partitions[i];
        if p.start_bytes > pos {
            raw.push((None, p.start_bytes - pos));
        }
        raw.push((Some(i), p.size_bytes));
        pos = pos.max(p.start_bytes.saturating_add(p.size_bytes));
    }
    if disk.size_bytes > pos {
        raw.push((None, disk.size_bytes - pos));
    }
    raw.retain(|(p, size)| p.is_some() || *size * 100 >= disk.size_bytes);
    let total: u128 = raw.iter().map(|(_, s)| *s as u128).sum::<u128>().max(1);
    // Largest remainder: floor shares, then the leftover columns to the largest fractions.
    let shares: Vec<(usize, u128)> = raw
        .iter()
        .map(|&(_, size)| {
            let exact = size as u128 * width as u128;
            ((exact / total) as usize, exact % total)
        })
        .collect();
    let mut out: Vec<Segment> = raw
        .iter()
        .zip(&shares)
        .map(|(&(partition, size_bytes), &(w, _))| Segment { partition, width: w.max(1), size_bytes })
        .collect();
    let mut by_fraction: Vec<usize> = (0..out.len()).collect();
    by_fraction.sort_by_key(|&i| std::cmp::Reverse(shares[i].1));
    let mut used: usize = out.iter().map(|s| s.width).sum();
    for &i in by_fraction.iter().cycle().take(out.len() * 2) {
        if used >= width {
            break;
        }
        out[i].width += 1;
        used += 1;
    }
    // Minimum widths can overshoot: take columns back from the widest.
    while out.iter().map(|s| s.width).sum::<usize>() > width {
        match out.iter_mut().filter(|s| s.width > 1).max_by_key(|s| s.width) {
            Some(s) => s.width -= 1,
            None => {
                out.pop();
            }
        }
    }
    out
}

pub use crate::units::human_size;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Partition;

    fn disk(parts: &[(u64, u64)], size: u64) -> Disk {
        Disk {
            size_bytes: size,
            partitions: parts
                .iter()
                .enumerate()
                .map(|(i, &(start_bytes, size_bytes))| Partition { number: i as u32 + 1, start_bytes, size_bytes, ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn widths_are_proportional_and_fill_the_bar() {
        let d = disk(&[(0, 25), (25, 50)], 100);
        let s = segments(&d, 40);
        assert_eq!(s.iter().map(|s| (s.partition, s.width)).collect::<Vec<_>>(), [(Some(0), 10), (Some(1), 20), (None, 10)]);
    }

    #[test]
    fn tiny_partitions_stay_visible_and_tiny_gaps_vanish() {
        let mib = 1 << 20;
        let d = disk(&[(mib, mib), (2 * mib, 1000 * mib)], 1003 * mib);
        let s = segments(&d, 20);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].width, 1);
        assert_eq!(s.iter().map(|s| s.width).sum::<usize>(), 20);
    }

    #[test]
    fn blank_and_empty_disks_draw_nothing_or_one_gap() {
        assert!(segments(&disk(&[], 0), 10).is_empty());
        assert_eq!(segments(&disk(&[], 100), 10), [Segment { partition: None, width: 10, size_bytes: 100 }]);
        assert_eq!(human_size(1536 << 20), "1.5 GiB");
    }
}
