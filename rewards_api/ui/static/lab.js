// The web lab's live parts, run in the browser: the score chart fed by Server-Sent Events, and MJPEG
// played from fetch() so that the page knows when an evaluation fails or ends.
"use strict";

window.rewardsLab = (function () {
  const REDRAW_MS = 250; // at most four chart redraws a second, however fast episodes come

  function text(id, value) {
    const element = getHtmlElement(id);
    if (element) element.textContent = value;
  }

  // Appends each episode's score and mean score to the chart; counts episodes and steps per second.
  function followTraining(options) {
    const chartComponent = getElement(options.chart);
    if (!chartComponent || !chartComponent.chart) {
      setTimeout(() => followTraining(options), 100); // the chart is not mounted yet
      return;
    }
    const chart = chartComponent.chart;
    const option = chart.getOption();
    const scores = option.series[0].data.slice();
    const means = option.series[1].data.slice();
    let pending = false;
    let last = null; // {steps, time} of the last speed sample
    let total = options.episodes;
    const source = new EventSource(options.url);

    function redraw() {
      pending = false;
      chart.setOption({ series: [{ data: scores }, { data: means }] });
    }

    source.addEventListener("episode", (message) => {
      const event = JSON.parse(message.data);
      scores.push([event.episode, event.score]);
      means.push([event.episode, event.mean_score]);
      text(options.episode, `${event.episode} / ${total}`);
      text(options.record, Number(event.record).toFixed(1));
      // PPO explores by sampling its policy: no epsilon (null).
      text(options.epsilon, event.epsilon === null ? "—" : Number(event.epsilon).toFixed(3));
      const now = performance.now();
      if (last === null) {
        last = { steps: event.steps, time: now };
      } else if (now - last.time >= 1000) {
        const rate = ((event.steps - last.steps) * 1000) / (now - last.time);
        text(options.speed, Math.round(rate).toLocaleString());
        last = { steps: event.steps, time: now };
      }
      if (!pending) {
        pending = true;
        setTimeout(redraw, REDRAW_MS);
      }
    });
    source.addEventListener("state", (message) => {
      const event = JSON.parse(message.data);
      if (event.episodes) total = event.episodes;
      if (!["queued", "running"].includes(event.state)) source.close();
    });
    for (const kind of ["finished", "failed"]) {
      source.addEventListener(kind, () => source.close());
    }
  }

  function indexOf(buffer, pattern, from) {
    outer: for (let i = from; i <= buffer.length - pattern.length; i++) {
      for (let j = 0; j < pattern.length; j++) {
        if (buffer[i + j] !== pattern[j]) continue outer;
      }
      return i;
    }
    return -1;
  }

  // Plays a multipart/x-mixed-replace stream of JPEG frames into an <img>; tells the page how it ended.
  async function playMjpeg(imageId, url) {
    const image = getHtmlElement(imageId);
    let response;
    try {
      response = await fetch(url);
    } catch (error) {
      emitEvent("rewards_evaluation_failed", { message: `the server could not be reached (${error})` });
      return;
    }
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).message || message;
      } catch (error) {
        // not JSON: keep the status text
      }
      emitEvent("rewards_evaluation_failed", { message: message, status: response.status });
      return;
    }
    const reader = response.body.getReader();
    const separator = new TextEncoder().encode("\r\n\r\n");
    const decoder = new TextDecoder();
    let buffer = new Uint8Array(0);
    let frames = 0;
    let shown = null;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const joined = new Uint8Array(buffer.length + value.length);
      joined.set(buffer);
      joined.set(value, buffer.length);
      buffer = joined;
      for (;;) {
        const headEnd = indexOf(buffer, separator, 0);
        if (headEnd < 0) break;
        const match = /content-length:\s*(\d+)/i.exec(decoder.decode(buffer.subarray(0, headEnd)));
        const start = headEnd + separator.length;
        if (!match || buffer.length < start + Number(match[1])) break;
        const jpeg = buffer.slice(start, start + Number(match[1]));
        buffer = buffer.slice(start + Number(match[1]));
        const next = URL.createObjectURL(new Blob([jpeg], { type: "image/jpeg" }));
        image.src = next;
        if (shown) URL.revokeObjectURL(shown);
        shown = next;
        frames += 1;
      }
    }
    emitEvent("rewards_evaluation_played", { frames: frames });
  }

  return { followTraining, playMjpeg };
})();
