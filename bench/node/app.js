// The Node SDK peer for the benchmark: a minimal SmartApp on @smartthings/smartapp with signature
// verification on and its key server pointed at the bench's loopback key server.
'use strict'
const cluster = require('node:cluster')
const http = require('node:http')
const SmartApp = require('@smartthings/smartapp')

const port = Number(process.env.PORT)
const workers = Number(process.env.WORKERS || 1)

function buildApp() {
	return new SmartApp()
		.keyApiHost(process.env.KEY_SERVER)
		.enableEventLogging(false)
		.page('mainPage', (context, page) => {
			page.section('Devices', section => {
				section.deviceSetting('switches').capabilities(['switch']).multiple(true).permissions('rx')
			})
		})
		.subscribedEventHandler('switchHandler', () => {})
}

function serve() {
	const app = buildApp()
	// Express-shaped request/response, since the SDK expects Express.
	http.createServer((req, res) => {
		const chunks = []
		req.on('data', chunk => chunks.push(chunk))
		req.on('end', () => {
			try {
				req.body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
			} catch (error) {
				res.statusCode = 400
				return res.end()
			}
			req.originalUrl = req.url
			res.status = code => { res.statusCode = code; return res }
			res.send = text => res.end(String(text))
			res.json = data => { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify(data)) }
			app.handleHttpCallback(req, res).catch(() => { res.statusCode = 500; res.end() })
		})
	}).listen(port, '127.0.0.1')
}

if (workers > 1 && cluster.isPrimary) {
	for (let i = 0; i < workers; i++) cluster.fork()
} else {
	serve()
}
