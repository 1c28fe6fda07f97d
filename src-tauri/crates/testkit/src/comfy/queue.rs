//! ComfyUI's prompt queue: queue items, and the pending heap kept in the exact array order Python's `heapq` gives
//! (which is why a real `/queue` lists `queue_pending` unsorted).

use serde::ser::{Serialize, SerializeSeq, Serializer};

use crate::pyjson::OrderedJson;

/// The number a queue item is ordered by: the server's counter (negative for `front`), or the client's own
/// `"number"`, which ComfyUI turns into a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum QueueNumber {
    Counter(i64),
    Client(f64),
}

impl QueueNumber {
    fn as_f64(self) -> f64 {
        match self {
            QueueNumber::Counter(n) => n as f64,
            QueueNumber::Client(f) => f,
        }
    }
}

impl Serialize for QueueNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            QueueNumber::Counter(n) => serializer.serialize_i64(*n),
            QueueNumber::Client(f) => serializer.serialize_f64(*f),
        }
    }
}

/// One queue entry, serialized as ComfyUI's tuple `[number, prompt_id, prompt, extra_data, outputs_to_execute]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QueueItem {
    pub number: QueueNumber,
    pub prompt_id: String,
    pub prompt: OrderedJson,
    pub extra_data: OrderedJson,
    pub outputs_to_execute: Vec<String>,
    /// A stand-in for another user's job, made to match `FakeComfyConfig::queue_running` / `queue_pending`.
    pub background: bool,
}

impl QueueItem {
    /// Python compares the tuples: number first, then the prompt id.
    fn less_than(&self, other: &QueueItem) -> bool {
        let (a, b) = (self.number.as_f64(), other.number.as_f64());
        a < b || (a == b && self.prompt_id < other.prompt_id)
    }
}

impl QueueItem {
    /// The item as the JSON array `/queue` and `/history` show.
    pub fn to_json(&self) -> OrderedJson {
        let number = match self.number {
            QueueNumber::Counter(n) => OrderedJson::Number(n.into()),
            QueueNumber::Client(f) => OrderedJson::from(f),
        };
        OrderedJson::Array(vec![
            number,
            self.prompt_id.as_str().into(),
            self.prompt.clone(),
            self.extra_data.clone(),
            OrderedJson::Array(
                self.outputs_to_execute
                    .iter()
                    .map(|o| o.as_str().into())
                    .collect(),
            ),
        ])
    }
}

impl Serialize for QueueItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(5))?;
        seq.serialize_element(&self.number)?;
        seq.serialize_element(&self.prompt_id)?;
        seq.serialize_element(&self.prompt)?;
        seq.serialize_element(&self.extra_data)?;
        seq.serialize_element(&self.outputs_to_execute)?;
        seq.end()
    }
}

/// The pending queue, a binary heap in `heapq`'s array layout.
#[derive(Clone, Debug, Default)]
pub(crate) struct PendingHeap {
    items: Vec<QueueItem>,
}

impl PendingHeap {
    /// The items in heap (wire) order.
    pub fn items(&self) -> &[QueueItem] {
        &self.items
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// `heapq.heappush`.
    pub fn push(&mut self, item: QueueItem) {
        self.items.push(item);
        let last = self.items.len() - 1;
        self.sift_down(0, last);
    }

    /// `heapq.heappop`: the next job a worker runs.
    pub fn pop(&mut self) -> Option<QueueItem> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let first = std::mem::replace(&mut self.items[0], last);
        self.sift_up(0);
        Some(first)
    }

    /// The first item in queue order that `runnable` accepts: `heappop` when it is the first item, else it is taken
    /// out as `delete_first` does (the items `runnable` refuses stay where they are).
    pub fn pop_next(&mut self, runnable: impl Fn(&QueueItem) -> bool) -> Option<QueueItem> {
        if runnable(self.items.first()?) {
            return self.pop();
        }
        let next = self
            .items
            .iter()
            .filter(|item| runnable(item))
            .reduce(|best, item| if item.less_than(best) { item } else { best })?
            .prompt_id
            .clone();
        self.delete_first(|item| runnable(item) && item.prompt_id == next)
    }

    /// `PromptQueue.wipe_queue`.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// `PromptQueue.delete_queue_item`: removes the first item matching `pred` and re-heapifies.
    pub fn delete_first(&mut self, pred: impl Fn(&QueueItem) -> bool) -> Option<QueueItem> {
        let pos = self.items.iter().position(pred)?;
        let removed = self.items.remove(pos);
        self.heapify();
        Some(removed)
    }

    /// `heapq.heapify`.
    fn heapify(&mut self) {
        for i in (0..self.items.len() / 2).rev() {
            self.sift_up(i);
        }
    }

    /// `heapq._siftdown`: moves the item at `pos` up towards `start` while it is smaller than its parent.
    fn sift_down(&mut self, start: usize, mut pos: usize) {
        while pos > start {
            let parent = (pos - 1) >> 1;
            if self.items[pos].less_than(&self.items[parent]) {
                self.items.swap(pos, parent);
                pos = parent;
            } else {
                break;
            }
        }
    }

    /// `heapq._siftup`: moves the smaller child up until a leaf, then sifts the item back down.
    fn sift_up(&mut self, start: usize) {
        let end = self.items.len();
        let mut pos = start;
        let mut child = 2 * pos + 1;
        while child < end {
            let right = child + 1;
            if right < end && !self.items[child].less_than(&self.items[right]) {
                child = right;
            }
            self.items.swap(pos, child);
            pos = child;
            child = 2 * pos + 1;
        }
        self.sift_down(start, pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: i64) -> QueueItem {
        QueueItem {
            number: QueueNumber::Counter(n),
            prompt_id: format!("p{n:03}"),
            prompt: OrderedJson::Object(Vec::new()),
            extra_data: OrderedJson::Object(Vec::new()),
            outputs_to_execute: Vec::new(),
            background: false,
        }
    }

    fn numbers(heap: &PendingHeap) -> Vec<i64> {
        heap.items()
            .iter()
            .map(|i| match i.number {
                QueueNumber::Counter(n) => n,
                QueueNumber::Client(f) => f as i64,
            })
            .collect()
    }

    #[test]
    fn queue_heap_reproduces_the_recorded_burst_order() {
        // The recorded burst (`queue_after_burst.json`): 20 prompts numbered 26..=45; the worker took 26 right
        // away and 27 after 36 was queued. The real server then listed this pending order.
        let mut heap = PendingHeap::default();
        heap.push(item(26));
        assert_eq!(heap.pop().map(|i| i.prompt_id), Some("p026".to_string()));
        for n in 27..=36 {
            heap.push(item(n));
        }
        assert_eq!(heap.pop().map(|i| i.prompt_id), Some("p027".to_string()));
        for n in 37..=45 {
            heap.push(item(n));
        }
        assert_eq!(
            numbers(&heap),
            [28, 30, 29, 34, 31, 32, 33, 36, 35, 37, 38, 39, 40, 41, 42, 43, 44, 45]
        );
    }

    #[test]
    fn queue_heap_delete_reheapifies_as_python_does() {
        // CPython 3.11: h=[]; [heappush(h,n) for n in range(26,34)]; heappop(h); heappop(h);
        // [heappush(h,n) for n in range(34,40)] -> [28, 29, 31, 33, 30, 32, 34, 35, 36, 37, 38, 39];
        // h.pop(h.index(32)); heapify(h) -> [28, 29, 31, 33, 30, 34, 35, 36, 37, 38, 39]
        let mut heap = PendingHeap::default();
        for n in 26..34 {
            heap.push(item(n));
        }
        heap.pop();
        heap.pop();
        for n in 34..40 {
            heap.push(item(n));
        }
        assert_eq!(
            numbers(&heap),
            [28, 29, 31, 33, 30, 32, 34, 35, 36, 37, 38, 39]
        );
        assert!(heap.delete_first(|i| i.prompt_id == "p032").is_some());
        assert_eq!(numbers(&heap), [28, 29, 31, 33, 30, 34, 35, 36, 37, 38, 39]);
    }

    #[test]
    fn queue_pop_next_skips_what_cannot_run() {
        let mut heap = PendingHeap::default();
        for n in [3, 1, 2, 5] {
            heap.push(item(n));
        }
        let next = heap.pop_next(|i| i.prompt_id != "p001");
        assert_eq!(next.map(|i| i.prompt_id), Some("p002".to_string()));
        assert_eq!(
            heap.pop_next(|_| true).map(|i| i.prompt_id),
            Some("p001".to_string())
        );
        assert_eq!(heap.pop_next(|_| false), None);
        assert_eq!(heap.len(), 2);
        assert_eq!(
            crate::pyjson::to_string(&item(4).to_json()),
            r#"[4, "p004", {}, {}, []]"#
        );
    }

    #[test]
    fn queue_front_numbers_come_first() {
        let mut heap = PendingHeap::default();
        heap.push(item(5));
        heap.push(item(6));
        heap.push(item(-7));
        assert_eq!(heap.pop().map(|i| i.prompt_id), Some("p-07".to_string()));
    }
}
