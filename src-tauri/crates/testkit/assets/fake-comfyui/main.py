"""A small stand-in for ComfyUI 0.3.64, packaged by ComfyFleet's testkit as "the ComfyUI archive".

It is what the installer's end-to-end test installs and starts: it imports torch (a tiny fake wheel from the testkit's
package index), listens like `python main.py --listen 127.0.0.1 --port P`, and answers the HTTP API and WebSocket
messages that ComfyFleet's client uses the way the real server does. EmptyImage -> SaveImage writes a real PNG.
Python 3.10+, standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import torch  # as real ComfyUI: without torch there is no server

VERSION = "0.3.64"
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FOLDERS = ["checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
                 "style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models",
                 "custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders"]
MODEL_EXTENSIONS = (".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

parser = argparse.ArgumentParser()
parser.add_argument("--listen", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8188)
parser.add_argument("--cpu", action="store_true")
parser.add_argument("--extra-model-paths-config", action="append", default=[])
parser.add_argument("--output-directory", default=None)
args, _unknown = parser.parse_known_args()

OUTPUT_DIR = os.path.abspath(args.output_directory or os.path.join(HERE, "output"))
DIRS = {"output": OUTPUT_DIR, "input": os.path.join(HERE, "input"), "temp": os.path.join(HERE, "temp")}


# --- model folders ------------------------------------------------------------------------------------------------

def read_extra_model_paths(path):
    """{folder: [dirs]} from an extra_model_paths.yaml of the usual simple form (sections of `key: value`, where a
    value may be a `|` block of one path per line)."""
    folders = {}
    base_dir = os.path.dirname(os.path.abspath(path))
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    sections, current, block = [], None, None
    for line in lines:
        if not line.startswith((" ", "\t")):
            current = {}
            sections.append(current)
            block = None
            continue
        key, sep, value = line.strip().partition(":")
        if block is not None and not sep:
            current[block].append(line.strip())
            continue
        value = value.strip().strip("'\"")
        if value == "|":
            block = key
            current[key] = []
        else:
            block = None
            current[key] = value
    for section in sections:
        base = os.path.join(base_dir, os.path.expanduser(section.pop("base_path", "")))
        section.pop("is_default", None)
        for folder, value in section.items():
            for p in value if isinstance(value, list) else [value]:
                folders.setdefault(folder, []).append(os.path.join(base, os.path.expanduser(p)))
    return folders


EXTRA_PATHS = {}
# Like ComfyUI: an extra_model_paths.yaml beside main.py is read without being named on the command line.
DEFAULT_EXTRA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extra_model_paths.yaml")
for config in ([DEFAULT_EXTRA] if os.path.isfile(DEFAULT_EXTRA) else []) + args.extra_model_paths_config:
    for folder, dirs in read_extra_model_paths(config).items():
        EXTRA_PATHS.setdefault(folder, []).extend(dirs)


def model_files(folder):
    """Model files in `folder` (ours and the extra paths), relative with '/', sorted, or None for an unknown folder."""
    if folder not in MODEL_FOLDERS:
        return None
    names = set()
    for root_dir in [os.path.join(HERE, "models", folder)] + EXTRA_PATHS.get(folder, []):
        for root, _dirs, files in os.walk(root_dir, followlinks=True):
            for name in files:
                if name.lower().endswith(MODEL_EXTENSIONS):
                    names.add(os.path.relpath(os.path.join(root, name), root_dir).replace(os.sep, "/"))
    return sorted(names)


# --- nodes ---------------------------------------------------------------------------------------------------------

def node_info(name, display, category, required, output=(), output_node=False, hidden=False, description=""):
    info = {"input": {"required": required}, "input_order": {"required": list(required)}, "output": list(output),
            "output_is_list": [False] * len(output), "output_name": list(output), "name": name,
            "display_name": display, "description": description, "python_module": "nodes",
            "category": category, "output_node": output_node}
    if hidden:
        info["input"]["hidden"] = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
        info["input_order"]["hidden"] = ["prompt", "extra_pnginfo"]
    return info


def object_info():
    return {
        "EmptyImage": node_info("EmptyImage", "EmptyImage", "image", {
            "width": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "height": ["INT", {"default": 512, "min": 1, "max": 16384, "step": 1}],
            "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}],
            "color": ["INT", {"default": 0, "min": 0, "max": 16777215, "step": 1, "display": "color"}]},
            output=["IMAGE"]),
        "SaveImage": node_info("SaveImage", "Save Image", "image", {
            "images": ["IMAGE", {"tooltip": "The images to save."}],
            "filename_prefix": ["STRING", {"default": "ComfyUI", "tooltip": "The prefix for the file to save."}]},
            output_node=True, hidden=True, description="Saves the input images to your ComfyUI output directory."),
        "PreviewImage": node_info("PreviewImage", "Preview Image", "image", {"images": ["IMAGE"]},
                                  output_node=True, hidden=True,
                                  description="Saves the input images to your ComfyUI output directory."),
        "CheckpointLoaderSimple": node_info("CheckpointLoaderSimple", "Load Checkpoint", "loaders", {
            "ckpt_name": [model_files("checkpoints"), {"tooltip": "The name of the checkpoint (model) to load."}]},
            output=["MODEL", "CLIP", "VAE"],
            description="Loads a diffusion model checkpoint, diffusion models are used to denoise latents."),
    }


def png(width, height, rgb):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def save_images(image, prefix, kind):
    """Writes each image of the batch as <prefix>_NNNNN_.png, numbering on from the files already there."""
    width, height, batch, color = image
    subfolder, _, name = prefix.replace("\\", "/").rpartition("/")
    folder = os.path.join(DIRS[kind], subfolder)
    os.makedirs(folder, exist_ok=True)
    taken = [f[len(name) + 1:-5] for f in os.listdir(folder) if f.startswith(name + "_") and f.endswith("_.png")]
    counter = max([int(n) for n in taken if n.isdigit()], default=0) + 1
    rgb = ((color >> 16) & 255, (color >> 8) & 255, color & 255)
    images = []
    for i in range(batch):
        filename = f"{name}_{counter + i:05}_.png"
        with open(os.path.join(folder, filename), "wb") as f:
            f.write(png(width, height, rgb))
        images.append({"filename": filename, "subfolder": subfolder, "type": kind})
    return images


def run_node(class_type, inputs):
    """(outputs, ui) of one node."""
    if class_type == "EmptyImage":
        return (int(inputs["width"]), int(inputs["height"]), int(inputs["batch_size"]), int(inputs["color"])), None
    if class_type == "SaveImage":
        return None, {"images": save_images(inputs["images"], str(inputs.get("filename_prefix", "ComfyUI")), "output")}
    if class_type == "PreviewImage":
        return None, {"images": save_images(inputs["images"], "ComfyUI_temp_" + uuid.uuid4().hex[:5], "temp")}
    if class_type == "CheckpointLoaderSimple":
        if inputs["ckpt_name"] not in model_files("checkpoints"):
            raise FileNotFoundError(f"Model in folder 'checkpoints' with filename '{inputs['ckpt_name']}' not found.")
        return ("MODEL", "CLIP", "VAE"), None
    raise RuntimeError(f"{class_type} cannot run here")


# --- prompts -------------------------------------------------------------------------------------------------------

def prompt_error(kind, message, details="", node_errors=None):
    return {"error": {"type": kind, "message": message, "details": details, "extra_info": {}},
            "node_errors": node_errors or {}}


def validate(prompt):
    """(outputs to execute, None) or (None, the 400 body)."""
    known = object_info()
    for node_id, node in prompt.items():
        if "class_type" not in node:
            return None, prompt_error("invalid_prompt", "Cannot execute because a node is missing the class_type "
                                      "property.", f"Node ID '#{node_id}'")
        if node["class_type"] not in known:
            return None, prompt_error("invalid_prompt", f"Cannot execute because node {node['class_type']} does not "
                                      "exist.", f"Node ID '#{node_id}'")
    outputs = [i for i, n in prompt.items() if known[n["class_type"]]["output_node"]]
    if not outputs:
        return None, prompt_error("prompt_no_outputs", "Prompt has no outputs")
    node_errors = {}
    for node_id, node in prompt.items():
        for name, spec in known[node["class_type"]]["input"]["required"].items():
            value = node.get("inputs", {}).get(name)
            if value is None:
                error = {"type": "required_input_missing", "message": "Required input is missing",
                         "details": name, "extra_info": {"input_name": name}}
            elif isinstance(spec[0], list) and value not in spec[0]:
                error = {"type": "value_not_in_list", "message": "Value not in list",
                         "details": f"{name}: '{value}' not in {spec[0]}", "extra_info": {"input_name": name}}
            else:
                continue
            node_errors.setdefault(node_id, {"errors": [], "dependent_outputs": outputs,
                                             "class_type": node["class_type"]})["errors"].append(error)
    if node_errors:
        return None, prompt_error("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                                  node_errors=node_errors)
    return outputs, None


def execution_order(prompt, outputs):
    order = []

    def visit(node_id):
        if node_id in order:
            return
        for value in prompt[node_id].get("inputs", {}).values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                visit(str(value[0]))
        order.append(node_id)
    for node_id in outputs:
        visit(node_id)
    return order


class Server:
    """The queue, the history and the WebSocket clients; one worker thread runs prompts one at a time."""

    def __init__(self):
        self.lock = threading.Condition()
        self.number = 0
        self.pending = []  # queue items: [number, prompt_id, prompt, extra_data, outputs]
        self.running = None
        self.interrupted = False
        self.history = {}
        self.sockets = {}  # sid -> WebSocket
        threading.Thread(target=self.work, daemon=True).start()

    def queue_remaining(self):
        return len(self.pending) + (1 if self.running else 0)

    def send(self, kind, data, sid=None):
        with self.lock:
            targets = [self.sockets[sid]] if sid in self.sockets else [] if sid else list(self.sockets.values())
        message = json.dumps({"type": kind, "data": data})
        for socket in targets:
            socket.send_text(message)

    def send_status(self, sid=None):
        with self.lock:
            status = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        if sid:
            status["sid"] = sid
        self.send("status", status, sid)

    def submit(self, body):
        with self.lock:
            number = self.number
            self.number += 1
        if "prompt" not in body:
            return 400, prompt_error("no_prompt", "No prompt provided", "No prompt provided")
        prompt = body["prompt"]
        outputs, error = validate(prompt)
        if error:
            return 400, error
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        with self.lock:
            self.pending.append([-number if body.get("front") else number, prompt_id, prompt, extra, outputs])
            self.lock.notify_all()
        self.send_status()
        return 200, {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    def work(self):
        while True:
            with self.lock:
                while not self.pending:
                    self.lock.wait()
                item = min(self.pending, key=lambda i: i[0])
                self.pending.remove(item)
                self.running, self.interrupted = item, False
            self.send_status()
            entry = self.execute(item)
            with self.lock:
                self.history[item[1]] = entry
                self.running = None
            self.send_status()
            self.send("executing", {"node": None, "prompt_id": item[1]}, item[3].get("client_id"))

    def execute(self, item):
        _number, prompt_id, prompt, extra, outputs = item
        sid = extra.get("client_id")
        messages = []

        def message(kind, data, keep=True):
            """Sends one message to the prompt's client; `keep`: also into the history, with a timestamp."""
            if keep:
                data = dict(data, timestamp=int(time.time() * 1000))
                messages.append([kind, data])
            self.send(kind, data, sid)

        message("execution_start", {"prompt_id": prompt_id})
        message("execution_cached", {"nodes": [], "prompt_id": prompt_id})
        order = execution_order(prompt, outputs)
        values, results, states, executed = {}, {}, {}, []

        def progress(node_id, state):
            states[node_id] = {"value": 1.0 if state == "finished" else 0.0, "max": 1.0, "state": state,
                               "node_id": node_id, "prompt_id": prompt_id, "display_node_id": node_id,
                               "parent_node_id": None, "real_node_id": node_id}
            message("progress_state", {"prompt_id": prompt_id, "nodes": dict(states)}, keep=False)

        for node_id in order:
            class_type = prompt[node_id]["class_type"]
            if self.interrupted:
                message("execution_interrupted", {"prompt_id": prompt_id, "node_id": node_id,
                                                  "node_type": class_type, "executed": executed[::-1]})
                return {"prompt": item, "outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                  "messages": messages}, "meta": {}}
            progress(node_id, "running")
            message("executing", {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}, keep=False)
            inputs = {k: values[str(v[0])] if isinstance(v, list) and len(v) == 2 and str(v[0]) in values else v
                      for k, v in prompt[node_id].get("inputs", {}).items()}
            try:
                values[node_id], ui = run_node(class_type, inputs)
            except Exception as e:  # noqa: BLE001 -- reported to the client as ComfyUI does
                message("execution_error", {"prompt_id": prompt_id, "node_id": node_id, "node_type": class_type,
                                            "executed": executed[::-1], "exception_message": str(e),
                                            "exception_type": type(e).__name__,
                                            "traceback": traceback.format_tb(e.__traceback__),
                                            "current_inputs": {}, "current_outputs": {}})
                return {"prompt": item, "outputs": {}, "status": {"status_str": "error", "completed": False,
                                                                  "messages": messages}, "meta": {}}
            if ui is not None:
                results[node_id] = ui
                message("executed", {"node": node_id, "display_node": node_id, "output": ui,
                                     "prompt_id": prompt_id}, keep=False)
            executed.append(node_id)
            progress(node_id, "finished")
        message("execution_success", {"prompt_id": prompt_id})
        meta = {n: {"node_id": n, "display_node": n, "parent_node": None, "real_node_id": n} for n in results}
        return {"prompt": item, "outputs": results,
                "status": {"status_str": "success", "completed": True, "messages": messages}, "meta": meta}

    def interrupt(self, prompt_id):
        with self.lock:
            if self.running and prompt_id in (None, self.running[1]):
                self.interrupted = True

    def edit_queue(self, body):
        with self.lock:
            if body.get("clear"):
                self.pending.clear()
            ids = set(body.get("delete") or [])
            self.pending = [i for i in self.pending if i[1] not in ids]
        self.send_status()

    def queue(self):
        with self.lock:
            return {"queue_running": [self.running] if self.running else [], "queue_pending": list(self.pending)}


class WebSocket:
    """The server side of one RFC 6455 connection: unmasked frames out, masked frames in."""

    def __init__(self, handler):
        self.rfile, self.wfile, self.lock = handler.rfile, handler.wfile, threading.Lock()

    def send_frame(self, opcode, payload):
        n = len(payload)
        header = bytes([0x80 | opcode]) + (bytes([n]) if n < 126 else struct.pack(">BH", 126, n) if n < 65536
                                           else struct.pack(">BQ", 127, n))
        with self.lock:
            try:
                self.wfile.write(header + payload)
            except OSError:
                pass

    def send_text(self, text):
        self.send_frame(0x1, text.encode())

    def serve(self):
        """Reads frames until the client closes: answers pings, echoes the close, ignores text."""
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if opcode == 0x8:
                self.send_frame(0x8, payload[:2])
                return
            if opcode == 0x9:
                self.send_frame(0xA, payload)


# --- HTTP ----------------------------------------------------------------------------------------------------------

def system_stats():
    try:
        ram_total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        ram_free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        ram_total = ram_free = 16 * 1024 ** 3
    return {"system": {"os": os.name, "ram_total": ram_total, "ram_free": ram_free, "comfyui_version": VERSION,
                       "required_frontend_version": "1.27.10", "installed_templates_version": "0.1.95",
                       "required_templates_version": "0.1.95", "python_version": sys.version,
                       "pytorch_version": torch.__version__, "embedded_python": False, "argv": sys.argv},
            "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": ram_total, "vram_free": ram_free,
                         "torch_vram_total": 0, "torch_vram_free": 0}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Python/aiohttp"

    def log_message(self, format, *args):  # noqa: A002 -- quiet, as ComfyUI is
        pass

    def answer(self, status, body=b"", content_type="application/json; charset=utf-8", headers=()):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route(self):
        url = urlparse(self.path)
        path = url.path[4:] if url.path.startswith("/api/") else url.path
        return path, {k: v[-1] for k, v in parse_qs(url.query).items()}

    def do_GET(self):
        path, query = self.route()
        if path == "/ws":
            return self.websocket(query.get("clientId") or uuid.uuid4().hex)
        if path == "/system_stats":
            return self.answer(200, system_stats())
        if path == "/queue":
            return self.answer(200, SERVER.queue())
        if path == "/prompt":
            return self.answer(200, {"exec_info": {"queue_remaining": SERVER.queue_remaining()}})
        if path == "/object_info":
            return self.answer(200, object_info())
        if path.startswith("/object_info/"):
            name = path.split("/", 2)[2]
            info = object_info()
            return self.answer(200, {name: info[name]} if name in info else {})
        if path == "/models":
            return self.answer(200, MODEL_FOLDERS)
        if path.startswith("/models/"):
            files = model_files(path.split("/", 2)[2])
            return self.answer(404) if files is None else self.answer(200, files)
        if path == "/embeddings":
            return self.answer(200, [name.rsplit(".", 1)[0] for name in model_files("embeddings")])
        if path == "/history":
            with SERVER.lock:
                items = list(SERVER.history.items())
            if query.get("max_items", "").isdigit():  # the last N, as ComfyUI answers
                items = items[max(len(items) - int(query["max_items"]), 0):]
            return self.answer(200, dict(items))
        if path.startswith("/history/"):
            prompt_id = path.split("/", 2)[2]
            entry = SERVER.history.get(prompt_id)
            return self.answer(200, {prompt_id: entry} if entry else {})
        if path == "/view":
            return self.view(query)
        if path == "/features":
            return self.answer(200, {"supports_preview_metadata": True, "max_upload_size": 104857600})
        return self.answer(404, b"404: Not Found", "text/plain; charset=utf-8")

    def do_POST(self):
        path, _query = self.route()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.answer(400, b"")
        if path == "/prompt":
            return self.answer(*SERVER.submit(body))
        if path == "/interrupt":
            SERVER.interrupt(body.get("prompt_id"))
            return self.answer(200)
        if path == "/queue":
            SERVER.edit_queue(body)
            return self.answer(200)
        if path == "/history":
            with SERVER.lock:
                if body.get("clear"):
                    SERVER.history.clear()
                for prompt_id in body.get("delete") or []:
                    SERVER.history.pop(prompt_id, None)
            return self.answer(200)
        return self.answer(404, b"404: Not Found", "text/plain; charset=utf-8")

    def view(self, query):
        filename, kind = query.get("filename"), query.get("type", "output")
        if not filename:
            return self.answer(404)
        if kind not in DIRS or ".." in filename.split("/") + query.get("subfolder", "").split("/"):
            return self.answer(400)
        path = os.path.join(DIRS[kind], query.get("subfolder", ""), filename)
        if not os.path.isfile(path):
            return self.answer(404)
        with open(path, "rb") as f:
            data = f.read()
        content_type = "image/png" if filename.endswith(".png") else "application/octet-stream"
        return self.answer(200, data, content_type, [("Content-Disposition", f'filename="{filename}"')])

    def websocket(self, sid):
        key = self.headers.get("Sec-WebSocket-Key")
        if not key or "websocket" not in (self.headers.get("Upgrade") or "").lower():
            return self.answer(400, b"Expected WebSocket upgrade", "text/plain; charset=utf-8")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True
        socket = WebSocket(self)
        with SERVER.lock:
            SERVER.sockets[sid] = socket
        try:
            SERVER.send_status(sid)
            socket.serve()
        except OSError:
            pass
        finally:
            with SERVER.lock:
                if SERVER.sockets.get(sid) is socket:
                    del SERVER.sockets[sid]


if __name__ == "__main__":
    ram = system_stats()["system"]["ram_total"] // (1024 * 1024)
    print(f"Total VRAM {ram} MB, total RAM {ram} MB")
    print(f"pytorch version: {torch.__version__}")
    print("Set vram state to: DISABLED" if args.cpu else "Set vram state to: NORMAL_VRAM")
    print("Device: cpu")
    print(f"Python version: {sys.version}")
    print(f"ComfyUI version: {VERSION}")
    for folder, dirs in EXTRA_PATHS.items():
        for d in dirs:
            print(f"Adding extra search path {folder} {d}")
    SERVER = Server()
    httpd = ThreadingHTTPServer((args.listen, args.port), Handler)
    httpd.daemon_threads = True
    print("Starting server\n")
    print(f"To see the GUI go to: http://{args.listen}:{httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("\nStopped server")
