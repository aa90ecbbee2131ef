// gateway.js: the network from a browser page, through the WebSocket gateway
// (the page's origin must be in [gateway] origins; the dashboard's is, by default)

function connect({url = "ws://127.0.0.1:5572/", token} = {}) {
  // Browsers cannot set headers on a WebSocket, so the token goes in the URL.
  return new WebSocket(token ? `${url}?token=${encodeURIComponent(token)}` : url,
                       "actornet.json");
}

function call(service, method, data = {}, options = {}) {
  // One call on its own WebSocket: resolves with the answer, or rejects with
  // the very line `actornet call` prints for the same failure.
  return new Promise((resolve, reject) => {
    const socket = connect(options);
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.op === "welcome") {
        socket.send(JSON.stringify({op: "call", id: 1, service, method, data}));
      } else if (frame.op === "result" || frame.op === "error") {
        socket.close();
        frame.op === "result" ? resolve(frame.result) : reject(new Error(frame.message));
      }
    };
    socket.onclose = (event) => reject(new Error(`the gateway closed: ${event.code} ${event.reason}`));
  });
}

function watch(topic, onEvent, options = {}) {
  // Calls onEvent(data, sender) for each event on topic; resolves with the
  // socket (close it to stop) once the gateway has confirmed the subscription.
  return new Promise((resolve, reject) => {
    const socket = connect(options);
    socket.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.op === "welcome") {
        socket.send(JSON.stringify({op: "subscribe", id: "watch", topic}));
      } else if (frame.op === "result" && frame.id === "watch") {
        resolve(socket);
      } else if (frame.op === "event") {
        onEvent(frame.data, frame.sender);
      } else if (frame.op === "error") {
        reject(new Error(frame.message));
      }
    };
    socket.onclose = (event) => reject(new Error(`the gateway closed: ${event.code} ${event.reason}`));
  });
}

// call("math", "add", {a: 50, b: 49}).then((answer) => console.log(answer.result));  // 99
// watch("actornet.actors", (event) => console.log(event.event, event.name));    // died math-1
