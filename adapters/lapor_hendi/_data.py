"""Kota Semarang as the Lapor Hendi simulator sees it: districts, streets, agencies
(OPD), categories with fitting complaint texts, and the pieces of fake identities.

Everything here is illustrative. Names, NIKs, phone numbers and e-mail addresses
are generated from these lists by a seeded RNG and belong to nobody (e-mail uses
the reserved example.* domains).
"""

from __future__ import annotations

# The app's vocabulary (also written down in docs/lapor-hendi-api.md).
STATUSES = ("belum terverifikasi", "terverifikasi", "dalam proses", "selesai", "ditolak")
STATUS_NEW = "belum terverifikasi"
STATUS_IN_PROGRESS = "dalam proses"
CLOSED_STATUSES = frozenset({"selesai", "ditolak"})

CLASSIFICATIONS = ("pengaduan", "aspirasi", "permintaan informasi")

CHANNELS = ("web", "android", "whatsapp", "sms1708", "twitter")
CHANNEL_WEIGHTS = (25, 35, 25, 8, 7)

OPD_NAMES = {
    "DPU": "Dinas Pekerjaan Umum Kota Semarang",
    "DLH": "Dinas Lingkungan Hidup Kota Semarang",
    "DISHUB": "Dinas Perhubungan Kota Semarang",
    "DINKES": "Dinas Kesehatan Kota Semarang",
    "DISDUKCAPIL": "Dinas Kependudukan dan Pencatatan Sipil Kota Semarang",
    "SATPOLPP": "Satuan Polisi Pamong Praja Kota Semarang",
    "DISDIK": "Dinas Pendidikan Kota Semarang",
}
ADMIN_NAME = "Admin Lapor Hendi"
SYSTEM_NAME = "Sistem Lapor Hendi"

# kategori -> the OPD the app routes it to (None: the admin handles it).
CATEGORY_OPD = {
    "Jalan Rusak": "DPU",
    "Banjir dan Drainase": "DPU",
    "Sampah": "DLH",
    "Lampu PJU Mati": "DISHUB",
    "Pelayanan Kesehatan": "DINKES",
    "Administrasi Kependudukan": "DISDUKCAPIL",
    "Ketertiban Umum": "SATPOLPP",
    "Pendidikan": "DISDIK",
    "Lainnya": None,
}
CATEGORIES = tuple(CATEGORY_OPD)
CATEGORY_WEIGHTS = (22, 16, 16, 12, 8, 8, 8, 5, 5)

# kecamatan -> (kelurahan, streets, approximate centre lat/lng)
DISTRICTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[float, float]]] = {
    "Semarang Tengah": (
        ("Sekayu", "Pandansari", "Kembangsari", "Miroto", "Pekunden"),
        ("Jl. Pemuda", "Jl. Pandanaran", "Jl. Gajahmada", "Jl. Depok"),
        (-6.9785, 110.4165),
    ),
    "Candisari": (
        ("Jatingaleh", "Candi", "Jomblang", "Tegalsari", "Karanganyar Gunung"),
        ("Jl. Teuku Umar", "Jl. Dr. Wahidin", "Jl. Sultan Agung", "Jl. Jomblang Perbalan"),
        (-7.0095, 110.4230),
    ),
    "Tembalang": (
        ("Bulusan", "Tembalang", "Sendangmulyo", "Meteseh", "Kramas"),
        ("Jl. Prof. Soedarto", "Jl. Banjarsari", "Jl. Ngesrep Timur", "Jl. Bulusan Raya"),
        (-7.0560, 110.4400),
    ),
    "Banyumanik": (
        ("Pedalangan", "Srondol Kulon", "Sumurboto", "Padangsari", "Banyumanik"),
        ("Jl. Setiabudi", "Jl. Durian Raya", "Jl. Perintis Kemerdekaan", "Jl. Ngesrep Barat"),
        (-7.0700, 110.4200),
    ),
    "Gayamsari": (
        ("Sawah Besar", "Kaligawe", "Tambakrejo", "Siwalan", "Sambirejo"),
        ("Jl. Kaligawe Raya", "Jl. Dr. Cipto", "Jl. Slamet Riyadi", "Jl. Supriyadi"),
        (-6.9700, 110.4450),
    ),
    "Genuk": (
        ("Trimulyo", "Terboyo Wetan", "Bangetayu Kulon", "Muktiharjo Lor", "Gebangsari"),
        ("Jl. Kaligawe Raya", "Jl. Wolter Monginsidi", "Jl. Banjardowo", "Jl. Genuk Raya"),
        (-6.9600, 110.4750),
    ),
    "Pedurungan": (
        ("Tlogosari Kulon", "Palebon", "Pedurungan Kidul", "Plamongan Sari", "Muktiharjo Kidul"),
        ("Jl. Majapahit", "Jl. Tlogosari Raya", "Jl. Brigjen Sudiarto", "Jl. Soekarno-Hatta"),
        (-6.9950, 110.4650),
    ),
    "Semarang Utara": (
        ("Tanjung Mas", "Kuningan", "Bandarharjo", "Panggung Lor", "Plombokan"),
        ("Jl. Ronggowarsito", "Jl. Yos Sudarso", "Jl. Hasanudin", "Jl. Empu Tantular"),
        (-6.9550, 110.4150),
    ),
    "Ngaliyan": (
        ("Tambakaji", "Ngaliyan", "Purwoyoso", "Beringin", "Wonosari"),
        ("Jl. Prof. Hamka", "Jl. Walisongo", "Jl. Raya Ngaliyan", "Jl. Honggowongso"),
        (-6.9950, 110.3550),
    ),
    "Gunungpati": (
        ("Sekaran", "Sukorejo", "Patemon", "Gunungpati", "Nongkosawit"),
        ("Jl. Raya Sekaran", "Jl. Taman Siswa", "Jl. Raya Gunungpati", "Jl. Kalimasada"),
        (-7.0800, 110.3900),
    ),
    "Semarang Barat": (
        ("Krobokan", "Tawangmas", "Kembangarum", "Manyaran", "Bojongsalaman"),
        ("Jl. Jenderal Sudirman", "Jl. Siliwangi", "Jl. Abdulrahman Saleh", "Jl. Pamularsih"),
        (-6.9850, 110.3900),
    ),
    "Semarang Selatan": (
        ("Lamper Kidul", "Peterongan", "Pleburan", "Wonodri", "Mugassari"),
        ("Jl. MT Haryono", "Jl. Lamper Tengah", "Jl. Pahlawan", "Jl. Veteran"),
        (-6.9950, 110.4250),
    ),
}
DISTRICT_CODES = {name: f"{i:02d}" for i, name in enumerate(DISTRICTS, start=1)}

# kategori -> [(klasifikasi, judul, isi)]. Placeholders: {jalan} {kelurahan} {kecamatan}
# {puskesmas} {sekolah} {hari}.
TEXTS: dict[str, list[tuple[str, str, str]]] = {
    "Jalan Rusak": [
        (
            "pengaduan",
            "Jalan berlubang di {jalan}",
            "Mohon perbaikan jalan berlubang di {jalan}, Kelurahan {kelurahan}. Lubangnya cukup dalam dan "
            "sudah beberapa kali membuat pengendara motor jatuh, apalagi kalau malam dan hujan.",
        ),
        (
            "pengaduan",
            "Aspal mengelupas dan bergelombang di {jalan}",
            "Aspal di {jalan} dekat perempatan mengelupas dan bergelombang sepanjang kurang lebih 50 meter. "
            "Mohon segera ditambal sebelum musim hujan, Kecamatan {kecamatan}.",
        ),
        (
            "pengaduan",
            "Paving jalan kampung ambles",
            "Paving jalan kampung di RT 04 RW 02 Kelurahan {kelurahan} ambles setelah ada galian pipa. "
            "Sudah sebulan tidak dikembalikan seperti semula.",
        ),
        (
            "aspirasi",
            "Usulan pelebaran {jalan}",
            "Kami warga {kelurahan} mengusulkan pelebaran {jalan} karena setiap pagi dan sore selalu macet "
            "panjang, terutama jam berangkat sekolah.",
        ),
    ],
    "Banjir dan Drainase": [
        (
            "pengaduan",
            "Banjir rob di {kelurahan}",
            "Banjir rob masuk ke permukiman warga {kelurahan} sejak {hari}. Air setinggi betis dan belum surut. "
            "Mohon pompa di {jalan} dicek karena sepertinya tidak menyala.",
        ),
        (
            "pengaduan",
            "Saluran air tersumbat di {jalan}",
            "Saluran drainase di {jalan} tersumbat sampah dan lumpur, setiap hujan deras air meluap ke jalan. "
            "Mohon dinormalisasi, Kecamatan {kecamatan}.",
        ),
        (
            "pengaduan",
            "Genangan air tidak surut di {jalan}",
            "Setiap habis hujan ada genangan di {jalan} yang tidak surut sampai dua hari. "
            "Sepertinya gorong-gorong tertutup. Mohon ditindaklanjuti.",
        ),
    ],
    "Sampah": [
        (
            "pengaduan",
            "Sampah menumpuk di TPS {kelurahan}",
            "Sampah di TPS dekat {jalan}, Kelurahan {kelurahan}, sudah menumpuk tiga hari tidak diangkut. "
            "Baunya menyengat dan mulai meluber ke jalan.",
        ),
        (
            "pengaduan",
            "Pembuangan sampah liar di {jalan}",
            "Ada pembuangan sampah liar di pinggir {jalan} dekat jembatan. Warga dari luar kampung membuang "
            "sampah di sana setiap malam. Mohon dipasang papan larangan dan dibersihkan.",
        ),
        (
            "permintaan informasi",
            "Jadwal pengangkutan sampah {kelurahan}",
            "Mohon informasi jadwal pengangkutan sampah untuk wilayah Kelurahan {kelurahan} "
            "Kecamatan {kecamatan}, karena jadwalnya sering berubah.",
        ),
    ],
    "Lampu PJU Mati": [
        (
            "pengaduan",
            "Lampu PJU mati di {jalan}",
            "Lampu penerangan jalan umum di {jalan} mati sejak {hari}, sekitar lima tiang berturut-turut. "
            "Jalan jadi gelap dan rawan kejahatan.",
        ),
        (
            "pengaduan",
            "PJU berkedip dan sering padam",
            "Lampu PJU di depan gang {kelurahan} ({jalan}) berkedip-kedip lalu padam. Mohon diperbaiki.",
        ),
    ],
    "Pelayanan Kesehatan": [
        (
            "pengaduan",
            "Antrean panjang di {puskesmas}",
            "Antrean pendaftaran di {puskesmas} sangat panjang, datang jam 07.00 baru dilayani jam 11.00. "
            "Mohon ditambah petugas loket atau dibuka pendaftaran online.",
        ),
        (
            "pengaduan",
            "Petugas {puskesmas} kurang ramah",
            "Saya kecewa dengan pelayanan petugas pendaftaran di {puskesmas} yang kurang ramah kepada pasien "
            "lansia. Mohon dibina.",
        ),
        (
            "permintaan informasi",
            "Jadwal imunisasi di {puskesmas}",
            "Mohon informasi jadwal posyandu dan imunisasi anak di wilayah {kelurahan}.",
        ),
    ],
    "Administrasi Kependudukan": [
        (
            "pengaduan",
            "KTP-el belum jadi",
            "Saya sudah rekam KTP-el di kantor Kecamatan {kecamatan} dua bulan lalu tetapi sampai sekarang "
            "belum jadi, alasannya blangko habis. Mohon kepastian.",
        ),
        (
            "pengaduan",
            "Kartu Keluarga belum dicetak",
            "Pengajuan perubahan Kartu Keluarga lewat kelurahan {kelurahan} sudah tiga minggu belum selesai. "
            "Status di aplikasi masih diproses.",
        ),
        (
            "permintaan informasi",
            "Syarat pindah domisili",
            "Mohon informasi syarat dan alur pindah domisili dari luar kota ke Kelurahan {kelurahan}.",
        ),
    ],
    "Ketertiban Umum": [
        (
            "pengaduan",
            "PKL menutup trotoar {jalan}",
            "Pedagang kaki lima di {jalan} berjualan di atas trotoar sehingga pejalan kaki harus turun ke "
            "jalan. Mohon ditertibkan.",
        ),
        (
            "pengaduan",
            "Parkir liar di {jalan}",
            "Banyak parkir liar di bahu {jalan} dekat pertokoan, menyebabkan macet setiap sore. Mohon penertiban.",
        ),
        (
            "pengaduan",
            "Balapan liar tiap malam Minggu",
            "Setiap malam Minggu ada balapan liar di {jalan} sampai dini hari, sangat mengganggu warga {kelurahan}.",
        ),
    ],
    "Pendidikan": [
        (
            "pengaduan",
            "Pungutan di {sekolah}",
            "Ada pungutan untuk seragam dan buku di {sekolah} yang cukup memberatkan orang tua. "
            "Mohon dicek apakah sesuai aturan.",
        ),
        (
            "permintaan informasi",
            "Jadwal PPDB zonasi {kecamatan}",
            "Mohon informasi jadwal dan kuota PPDB jalur zonasi untuk SMP negeri di Kecamatan {kecamatan}.",
        ),
        (
            "pengaduan",
            "Atap ruang kelas {sekolah} bocor",
            "Atap dua ruang kelas di {sekolah} bocor saat hujan sehingga siswa harus dipindah. "
            "Mohon segera diperbaiki.",
        ),
    ],
    "Lainnya": [
        (
            "aspirasi",
            "Usulan taman bermain anak di {kelurahan}",
            "Warga {kelurahan} mengusulkan lahan kosong di {jalan} dijadikan taman bermain anak dan ruang "
            "terbuka hijau.",
        ),
        (
            "pengaduan",
            "Pohon tumbang belum dievakuasi",
            "Pohon tumbang di {jalan} sejak {hari} belum dievakuasi dan menutup separuh badan jalan.",
        ),
        (
            "permintaan informasi",
            "Informasi bantuan sosial",
            "Mohon informasi cara mendaftar bantuan sosial untuk warga {kelurahan} yang belum terdata.",
        ),
    ],
}

OFFICER_REPLIES = [
    "Terima kasih atas laporannya. Aduan sudah kami terima dan diteruskan ke tim lapangan wilayah "
    "{kecamatan}. Akan ditindaklanjuti paling lambat 7 hari kerja.",
    "Terima kasih. Petugas kami sudah melakukan pengecekan lokasi di {kelurahan}; penanganan dijadwalkan minggu ini.",
    "Laporan sedang kami koordinasikan dengan UPTD terkait. Mohon kesediaannya menunggu, kami kabari "
    "perkembangannya di sini.",
    "Mohon maaf atas ketidaknyamanannya. Tim sudah kami jadwalkan ke lokasi, terima kasih atas "
    "partisipasinya untuk Semarang yang lebih hebat.",
]

PUSKESMAS = (
    "Puskesmas Halmahera",
    "Puskesmas Pandanaran",
    "Puskesmas Ngesrep",
    "Puskesmas Kedungmundu",
    "Puskesmas Tlogosari Kulon",
    "Puskesmas Bandarharjo",
    "Puskesmas Ngaliyan",
    "Puskesmas Sekaran",
)
SCHOOLS = (
    "SD Negeri Sekayu",
    "SD Negeri Jomblang 02",
    "SMP Negeri 21 Semarang",
    "SMP Negeri 2 Semarang",
    "SD Negeri Tlogosari Kulon 01",
    "SMP Negeri 13 Semarang",
)
DAYS = ("Senin", "Selasa", "Rabu", "Kamis", "Jumat", "Sabtu", "Minggu")

FIRST_NAMES = (
    "Budi",
    "Siti",
    "Agus",
    "Sri",
    "Dwi",
    "Eko",
    "Rina",
    "Wahyu",
    "Dewi",
    "Joko",
    "Nur",
    "Ahmad",
    "Fitri",
    "Hendra",
    "Yuni",
    "Slamet",
    "Bambang",
    "Retno",
    "Tri",
    "Ika",
    "Rizky",
    "Ayu",
    "Fajar",
    "Lestari",
    "Teguh",
    "Mega",
    "Andi",
    "Puji",
    "Endang",
    "Yoga",
)
FEMALE_FIRST_NAMES = frozenset(
    {"Siti", "Sri", "Rina", "Dewi", "Fitri", "Yuni", "Retno", "Ika", "Ayu", "Lestari", "Mega", "Puji", "Endang"}
)
LAST_NAMES = (
    "Santoso",
    "Wulandari",
    "Prasetyo",
    "Rahayu",
    "Setiawan",
    "Susanti",
    "Hidayat",
    "Purnomo",
    "Kurniawan",
    "Saputra",
    "Handayani",
    "Nugroho",
    "Wibowo",
    "Utomo",
    "Maharani",
    "Firmansyah",
    "Pratiwi",
    "Susilo",
)
PHONE_PREFIXES = ("0812", "0813", "0821", "0822", "0852", "0856", "0857", "0878", "0895", "0896")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
